"""A small fixed-window rate limiter on the cache (Redis in production, so
every web process shares the counts). Used for log-in attempts, sign-ups and
the faucet, and by the API's throttles (``throttles.py``), which identify a
client the same way."""

import ipaddress
import logging
import time

from django.conf import settings
from django.core.cache import cache

# Every limit that trips says so here, with the client address and account.
security_log = logging.getLogger("aethir.security")


def _name(scope: str, key: str, window: int) -> str:
    return f"rl:{scope}:{key}:{int(time.time()) // window}"


def count(scope: str, key: str, window: int) -> tuple[int, int]:
    """Count one attempt; returns (attempts in this window, seconds until it resets)."""
    n = _increment(_name(scope, key, window), timeout=window + 5)
    return n, window - int(time.time()) % window


def _increment(name: str, timeout: int) -> int:
    """Add one to the counter ``name``, created at one and forgotten
    ``timeout`` seconds later; the count after. Atomic on any cache: on
    Redis one round trip (``ResilientRedisCache.increment``), elsewhere
    ``add`` then ``incr``, each atomic in itself."""
    increment = getattr(cache, "increment", None)
    if increment is not None:
        return increment(name, timeout)
    if cache.add(name, 1, timeout=timeout):
        return 1
    try:
        return cache.incr(name)
    except ValueError:  # expired between the two
        cache.set(name, 1, timeout=timeout)
        return 1


def hit(scope: str, key: str, limit: int, window: int) -> tuple[bool, int]:
    """Count one attempt; returns (allowed, seconds until the window resets)."""
    n, retry = count(scope, key, window)
    return n <= limit, retry


def peek(scope: str, key: str, window: int) -> int:
    """Attempts counted in the current window, without counting one."""
    return cache.get(_name(scope, key, window), 0)


def undo(scope: str, key: str, window: int) -> None:
    """Take back one attempt counted by ``hit``/``count`` (one that turned out
    not to use what the limit protects, such as a refused faucet claim).
    Counting first and giving back afterwards keeps the limit exact under
    concurrent requests, which a check-then-count would not."""
    try:
        cache.decr(_name(scope, key, window))
    except ValueError:  # the window turned over (or the cache forgot): nothing to give back
        pass


def client_ip(request) -> str:
    """The address of the client, as far as it can be trusted.

    ``TRUSTED_PROXIES`` (default 0) is how many reverse proxies in front of
    the app append the address of their peer to ``X-Forwarded-For`` (nginx:
    ``proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for``). Only
    those last entries were written by someone we trust: everything to their
    left came from the client and may be forged. So with N proxies the client
    is the Nth entry from the right; with none, ``X-Forwarded-For`` is
    ignored and the address is the peer's (``REMOTE_ADDR``).

    This is exactly what DRF's throttles use with ``NUM_PROXIES`` = N, so the
    forms and the API count the same client as one.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if not proxies or forwarded is None:
        return remote
    entries = forwarded.split(",")
    # Fewer entries than proxies only happens when the proxy setting is wrong;
    # DRF then takes the leftmost, and so do we, to count clients alike.
    return entries[-min(proxies, len(entries))].strip()


def address_key(address: str) -> str:
    """The key that an address's limits count under. An IPv6 client usually
    holds a whole /64 and can pick any address in it, so it counts as one."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)

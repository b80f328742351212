"""A small fixed-window rate limiter on the cache (Redis in production, so
every web process shares the counts). Used for log-in attempts and the
faucet form; the API uses DRF's throttles, configured in settings."""

import time

from django.core.cache import cache


def hit(scope: str, key: str, limit: int, window: int) -> tuple[bool, int]:
    """Count one attempt; returns (allowed, seconds until the window resets)."""
    bucket = int(time.time()) // window
    name = f"rl:{scope}:{key}:{bucket}"
    added = cache.add(name, 1, timeout=window + 5)
    count = 1 if added else cache.incr(name)
    retry = window - int(time.time()) % window
    return count <= limit, retry


def client_ip(request) -> str:
    # Behind the reverse proxy (README, Production) REMOTE_ADDR is the proxy;
    # it must set X-Forwarded-For, and only the proxy can reach the app.
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    return forwarded.split(",")[0].strip() or request.META.get("REMOTE_ADDR", "")

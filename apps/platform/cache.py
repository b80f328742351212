"""The Redis cache, made to survive a Redis outage.

The cache holds only rate-limit counters (DRF throttles, ``ratelimit``) and
the catalogue's counts, kept a few seconds, so losing it for a while costs
nothing that matters (limits are off, counts are counted afresh), while
failing every request that touches it would: agents' heartbeats would be refused and their
nodes would look offline to settlement. During an outage this cache behaves
like an empty one that remembers nothing: reads miss, writes are dropped,
``add`` reports a new key (so every counter starts again at one) and rate
limits are effectively off until Redis is back. Each call still tries Redis
first, so recovery is immediate.

Its Redis client, and so its connection pool, is one per process and
location. Django keeps a cache object per request context under ASGI
(``caches`` is an asgiref ``Local``), and its own backend gives each object
a client of its own: every request opened a new pool and a new TCP
connection to Redis for its first cache call, which cost a rate-limited
agent post more server CPU than the rest of its work (see bench/ingest.py).
redis-py's pool is thread-safe and starts afresh in a forked child.
"""

import functools
import logging
import threading
import time

from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
_warned_at = 0.0


def _unavailable(exc: Exception) -> None:
    global _warned_at
    now = time.monotonic()
    if now - _warned_at > 10:  # one line per outage, not one per request
        _warned_at = now
        log.warning("cache unavailable (%s): rate limits are off until Redis answers", exc)


def _or_else(method, fallback):
    """``method``, answering ``fallback(*args)`` when Redis cannot be reached."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except RedisError as exc:
            _unavailable(exc)
            return fallback(*args, **kwargs)

    return call


_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


class ResilientRedisCache(RedisCache):
    @cached_property
    def _cache(self):
        """The process's client for this location and these options (see the module)."""
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _clients_lock:
            if key not in _clients:
                _clients[key] = self._class(self._servers, **self._options)
            return _clients[key]

    def increment(self, key, timeout: int, version=None) -> int:
        """Add one to the integer counter ``key`` (created at one) and have
        it expire ``timeout`` seconds from now; the count after. One round
        trip (INCR and EXPIRE in one MULTI/EXEC), where ``add`` then
        ``incr`` cost up to three (Django's ``incr`` checks that the key
        exists first). The counter reads back through ``get`` as an integer
        (Django stores integers unpickled). Each increment pushes the expiry
        on: the rate limits name a counter per window, so it still goes a
        little after its window ends."""
        key = self.make_and_validate_key(key, version=version)
        with self._cache.get_client(key, write=True).pipeline() as pipe:
            count, _ = pipe.incr(key).expire(key, timeout).execute()
        return count

    increment = _or_else(increment, lambda key, timeout, version=None: 1)  # as ``add``: limits are off
    get = _or_else(RedisCache.get, lambda key, default=None, version=None: default)
    get_many = _or_else(RedisCache.get_many, lambda *a, **k: {})
    has_key = _or_else(RedisCache.has_key, lambda *a, **k: False)
    add = _or_else(RedisCache.add, lambda *a, **k: True)  # "a new key": counters start again at one
    incr = _or_else(RedisCache.incr, lambda key, delta=1, version=None: delta)
    set = _or_else(RedisCache.set, lambda *a, **k: None)
    set_many = _or_else(RedisCache.set_many, lambda data, *a, **k: list(data))
    touch = _or_else(RedisCache.touch, lambda *a, **k: False)
    delete = _or_else(RedisCache.delete, lambda *a, **k: False)
    delete_many = _or_else(RedisCache.delete_many, lambda *a, **k: None)
    clear = _or_else(RedisCache.clear, lambda *a, **k: False)

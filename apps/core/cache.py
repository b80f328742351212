"""The Redis cache, made to survive a Redis outage.

The cache holds only rate-limit counters (DRF throttles, ``ratelimit``), so
losing it for a while costs nothing that matters, while failing every
request that touches it would: agents' heartbeats would be refused and their
nodes would look offline to settlement. During an outage this cache behaves
like an empty one that remembers nothing: reads miss, writes are dropped,
``add`` reports a new key (so every counter starts again at one) and rate
limits are effectively off until Redis is back. Each call still tries Redis
first, so recovery is immediate.
"""

import logging
import time

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class ResilientRedisCache(RedisCache):
    _warned_at = 0.0

    def _unavailable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - ResilientRedisCache._warned_at > 10:  # one line per outage, not per request
            ResilientRedisCache._warned_at = now
            log.warning("cache unavailable (%s): rate limits are off until Redis answers", exc)

    def get(self, key, default=None, version=None):
        try:
            return super().get(key, default, version)
        except RedisError as exc:
            self._unavailable(exc)
            return default

    def get_many(self, keys, version=None):
        try:
            return super().get_many(keys, version)
        except RedisError as exc:
            self._unavailable(exc)
            return {}

    def has_key(self, key, version=None):
        try:
            return super().has_key(key, version)
        except RedisError as exc:
            self._unavailable(exc)
            return False

    def add(self, key, value, timeout=None, version=None):
        try:
            return super().add(key, value, timeout, version)
        except RedisError as exc:
            self._unavailable(exc)
            return True

    def incr(self, key, delta=1, version=None):
        try:
            return super().incr(key, delta, version)
        except RedisError as exc:
            self._unavailable(exc)
            return delta

    def set(self, key, value, timeout=None, version=None):
        try:
            return super().set(key, value, timeout, version)
        except RedisError as exc:
            self._unavailable(exc)

    def set_many(self, data, timeout=None, version=None):
        try:
            return super().set_many(data, timeout, version)
        except RedisError as exc:
            self._unavailable(exc)
            return list(data)

    def touch(self, key, timeout=None, version=None):
        try:
            return super().touch(key, timeout, version)
        except RedisError as exc:
            self._unavailable(exc)
            return False

    def delete(self, key, version=None):
        try:
            return super().delete(key, version)
        except RedisError as exc:
            self._unavailable(exc)
            return False

    def delete_many(self, keys, version=None):
        try:
            return super().delete_many(keys, version)
        except RedisError as exc:
            self._unavailable(exc)

    def clear(self):
        try:
            return super().clear()
        except RedisError as exc:
            self._unavailable(exc)
            return False

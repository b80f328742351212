"""The Redis cache keeps one client (one connection pool) per process: under
ASGI Django builds a cache object per request context, and each used to
open a new TCP connection to Redis for its first call."""

import os

import pytest
import redis

from apps.platform.cache import ResilientRedisCache

URL = os.environ.get("REDIS_URL", "")

pytestmark = pytest.mark.skipif(not URL, reason="needs Redis (REDIS_URL)")


def connections_received() -> int:
    return redis.Redis.from_url(URL).info("stats")["total_connections_received"]


def test_a_cache_object_per_request_opens_no_connection_per_request():
    params = {"KEY_PREFIX": "test-cache-connections", "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}
    ResilientRedisCache(URL, params).get("warm")  # the process's pool, opened once
    before = connections_received()
    for i in range(30):  # as thirty requests, each with Django's cache object of its own
        cache = ResilientRedisCache(URL, params)
        cache.set(f"k{i}", i, 30)
        assert cache.get(f"k{i}") == i
    # The probes above opened one connection each; the requests none.
    assert connections_received() - before <= 2

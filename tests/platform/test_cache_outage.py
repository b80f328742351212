"""A Redis outage turns rate limits off; it never fails a request."""

import socket

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from apps.platform import ratelimit
from apps.platform.cache import ResilientRedisCache
from tests.factories import make_node


def dead_redis_url() -> str:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{s.getsockname()[1]}/0"


DOWN = {
    "default": {
        "BACKEND": "apps.platform.cache.ResilientRedisCache",
        "LOCATION": dead_redis_url(),
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    }
}


def test_the_cache_reads_as_empty_and_forgets_while_redis_is_down():
    cache = ResilientRedisCache(DOWN["default"]["LOCATION"], {"OPTIONS": DOWN["default"]["OPTIONS"]})
    assert cache.get("k", "fallback") == "fallback"
    assert cache.add("k", 1) is True  # every counter starts again at one
    assert cache.incr("k") == 1
    cache.set("k", 5)
    assert cache.get_many(["k"]) == {}
    assert cache.has_key("k") is False


@override_settings(CACHES=DOWN)
def test_rate_limits_let_requests_through_while_redis_is_down():
    allowed = [ratelimit.hit("login", "1.2.3.4", limit=2, window=60)[0] for _ in range(5)]
    assert allowed == [True] * 5


@pytest.mark.django_db
@override_settings(CACHES=DOWN)
def test_an_agent_heartbeat_is_stored_while_redis_is_down(client, genesis):
    node, token = make_node()
    sample = {
        "at": timezone.now().isoformat(),
        "gpu_util": 50,
        "mem_used_mb": 1000,
        "mem_total_mb": 81920,
        "temperature_c": 60,
        "power_w": 300,
        "workloads": 0,
    }
    response = client.post(
        reverse("api:agent-heartbeats"),
        {"samples": [sample]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Agent {token}",
    )
    assert response.status_code == 201, response.content
    assert node.heartbeats.count() == 1

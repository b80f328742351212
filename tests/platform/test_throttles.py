"""The API's rate limits: one shared, atomic count per client and window,
whichever worker answers (Redis in the PostgreSQL run, local memory here)."""

import threading

import pytest
from django.core.cache import cache
from django.test import RequestFactory
from rest_framework.test import APIClient

from apps.core.amounts import ath
from apps.platform import ratelimit, throttles

from ..factories import UserFactory, fund

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen(monkeypatch):
    """The clock stopped mid-window, so a test never straddles two windows."""
    now = [1_800_000_030.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: now[0])
    return now


class Limited(throttles.WindowThrottle):
    scope = "test-limit"
    rate = "50/minute"


def test_a_limit_admits_exactly_its_rate_under_concurrent_requests(frozen):
    """Eight threads at once, as eight workers answering one client: DRF's
    throttles read a client's history and wrote it back whole, so requests
    that crossed were each counted as the only one."""
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.7")
    admitted, start = [], threading.Barrier(8)

    def client():
        start.wait()
        admitted.extend(Limited().allow_request(request, None) for _ in range(25))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert admitted.count(True) == 50 and admitted.count(False) == 150


def test_a_refusal_says_when_to_retry_and_the_next_window_starts_afresh(frozen):
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.7")
    throttle = Limited()
    assert all(throttle.allow_request(request, None) for _ in range(50))
    assert throttle.allow_request(request, None) is False
    assert throttle.wait() == 30  # the window ends at the next full minute
    frozen[0] += 30
    assert throttle.allow_request(request, None) is True


def test_clients_are_counted_apart_and_an_ipv6_client_by_its_64(frozen, settings):
    factory = RequestFactory()
    settings.TRUSTED_PROXIES = 0
    one, other = (factory.get("/", REMOTE_ADDR=a) for a in ("2001:db8:1:2::1", "2001:db8:1:3::1"))
    same_64 = factory.get("/", REMOTE_ADDR="2001:db8:1:2:ffff::9")
    for _ in range(50):
        Limited().allow_request(one, None)
    assert Limited().allow_request(same_64, None) is False
    assert Limited().allow_request(other, None) is True


def test_the_counter_reads_back_and_gives_back_through_the_cache(frozen):
    assert [ratelimit.count("scope", "key", 60)[0] for _ in range(3)] == [1, 2, 3]
    assert ratelimit.peek("scope", "key", 60) == 3
    ratelimit.undo("scope", "key", 60)
    assert ratelimit.peek("scope", "key", 60) == 2


def test_a_counter_is_per_window_and_expires_after_it(frozen):
    name = ratelimit._name("scope", "expiring", 60)
    ratelimit.count("scope", "expiring", 60)
    assert cache.get(name) == 1
    on_redis = hasattr(cache, "increment")
    if on_redis:  # the expiry rides with the counter: no key is left behind
        ttl = cache._cache.get_client(write=False).ttl(cache.make_and_validate_key(name))
        assert 60 <= ttl <= 65
    frozen[0] += 60
    assert ratelimit.peek("scope", "expiring", 60) == 0  # the next window counts afresh
    if not on_redis:  # the local cache keeps time by the (stopped) clock
        frozen[0] += 6
        assert cache.get(name) is None


def test_api_transfers_are_limited_per_account_with_retry_after(settings, genesis):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "transfer": "2/minute"},
    }
    sender, receiver = UserFactory(), UserFactory()
    fund(sender.wallet, ath(10))
    api = APIClient()
    api.force_authenticate(sender)
    body = {"to_address": receiver.wallet.address, "amount": "1000", "memo": ""}
    codes = [api.post("/api/wallet/send/", body, format="json") for _ in range(3)]
    assert [r.status_code for r in codes] == [201, 201, 429]
    assert 0 < int(codes[2]["Retry-After"]) <= 60
    # Another account is not held back by the first one's requests.
    other = APIClient()
    other.force_authenticate(receiver)
    assert other.post("/api/wallet/send/", {**body, "to_address": sender.wallet.address}).status_code == 201

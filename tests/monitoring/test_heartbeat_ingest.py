"""Heartbeat ingest stores exactly what agents posted: every sample once,
whatever is resent, and nothing once the agent's token is revoked, even while
this process still remembers it."""

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from apps.core.models import AgentToken
from apps.monitoring.models import Heartbeat

from ..factories import make_node

FIELDS = ("gpu_util", "mem_used_mb", "mem_total_mb", "temperature_c", "power_w", "workloads")


def agent(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Agent {token}")
    return client


def sample(at, util=50):
    return {
        "at": at.isoformat(),
        "gpu_util": util,
        "mem_used_mb": 1000 + util,
        "mem_total_mb": 81920,
        "temperature_c": 40 + util % 50,
        "power_w": 300 + util,
        "workloads": util % 3,
    }


def stored(node):
    return sorted(
        (h.at, *(getattr(h, f) for f in FIELDS)) for h in Heartbeat.objects.filter(node=node).order_by("at", "id")
    )


def expected(samples):
    seen = {}
    for s in samples:
        at = timezone.datetime.fromisoformat(s["at"])
        seen.setdefault(at, (at, *(s[f] for f in FIELDS)))
    return sorted(seen.values())


@pytest.mark.django_db(transaction=False)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, 600), st.integers(0, 100)), min_size=1, max_size=25), min_size=1, max_size=6
    ),
    resend=st.lists(st.integers(0, 5), max_size=4),
)
def test_what_is_stored_is_exactly_what_was_posted(genesis, batches, resend):
    """Batches of samples (some instants repeated within and across
    batches), some resent as an agent does when an answer is lost: each
    instant is stored once, with the values first posted for it, and
    every answer says the whole batch was accepted."""
    Heartbeat.objects.all().delete()
    node, token = make_node()
    client = agent(token)
    now = timezone.now().replace(microsecond=0)
    payloads = [[sample(now - timedelta(seconds=s), u) for s, u in batch] for batch in batches]
    order = list(range(len(payloads))) + [i % len(payloads) for i in resend]
    for i in order:
        r = client.post("/api/agent/heartbeats/", {"samples": payloads[i]}, format="json")
        assert r.status_code == 201 and r.json()["stored"] == len(payloads[i])
    first_posted = [s for i in order for s in payloads[i]]
    assert stored(node) == expected(first_posted)


def test_a_resent_batch_adds_nothing_and_a_new_one_lands(genesis):
    node, token = make_node()
    client = agent(token)
    now = timezone.now()
    batch = [sample(now - timedelta(seconds=10), 10), sample(now - timedelta(seconds=5), 20)]
    for _ in range(3):
        assert client.post("/api/agent/heartbeats/", {"samples": batch}, format="json").status_code == 201
    assert Heartbeat.objects.filter(node=node).count() == 2
    assert client.post("/api/agent/heartbeats/", {"samples": [sample(now, 30)]}, format="json").status_code == 201
    assert [h.gpu_util for h in Heartbeat.objects.filter(node=node).order_by("at")] == [10, 20, 30]


def test_a_revoked_token_writes_nothing_even_when_remembered(genesis):
    """The first post puts the token in this process's cache; revoking it
    (a new token issued for the node) must refuse the very next post, and
    the new token works at once."""
    node, token = make_node()
    now = timezone.now()
    assert agent(token).post("/api/agent/heartbeats/", {"samples": [sample(now)]}, format="json").status_code == 201
    _, fresh = AgentToken.issue(node=node)
    r = agent(token).post("/api/agent/heartbeats/", {"samples": [sample(now - timedelta(seconds=5))]}, format="json")
    assert r.status_code == 401
    assert Heartbeat.objects.filter(node=node).count() == 1
    r = agent(fresh).post("/api/agent/heartbeats/", {"samples": [sample(now - timedelta(seconds=5))]}, format="json")
    assert r.status_code == 201 and Heartbeat.objects.filter(node=node).count() == 2
    # The old token stays refused (forgotten, then unknown).
    r = agent(token).post("/api/agent/heartbeats/", {"samples": [sample(now - timedelta(seconds=9))]}, format="json")
    assert r.status_code == 401


def test_a_token_of_a_deleted_node_writes_nothing(genesis):
    node, token = make_node()
    keep, _ = make_node()
    now = timezone.now()
    assert agent(token).post("/api/agent/heartbeats/", {"samples": [sample(now)]}, format="json").status_code == 201
    AgentToken.objects.filter(node=node).delete()
    r = agent(token).post("/api/agent/heartbeats/", {"samples": [sample(now - timedelta(seconds=3))]}, format="json")
    assert r.status_code == 401 and Heartbeat.objects.filter(node=node).count() == 1
    assert not Heartbeat.objects.filter(node=keep).exists()


def test_a_remembered_token_is_not_looked_up_again(genesis):
    """The second post of an agent within the minute costs no token lookup:
    its insert alone checks the token."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    node, token = make_node()
    now = timezone.now()
    client = agent(token)
    assert client.post("/api/agent/heartbeats/", {"samples": [sample(now)]}, format="json").status_code == 201
    with CaptureQueriesContext(connection) as queries:
        r = client.post("/api/agent/heartbeats/", {"samples": [sample(now - timedelta(seconds=5))]}, format="json")
    assert r.status_code == 201 and Heartbeat.objects.filter(node=node).count() == 2
    assert not [q for q in queries.captured_queries if "key_hash" in q["sql"]]
    # Other agent endpoints still look the token up every time.
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/agent/me/").status_code == 200
    assert [q for q in queries.captured_queries if "key_hash" in q["sql"]]


def test_an_agent_seen_long_ago_is_still_not_looked_up_and_its_use_is_recorded(genesis):
    """Behind a load balancer a process sees an agent far less often than
    once a minute: the token stays remembered, and a post more than a minute
    after the last recorded use records it again, in the batch's transaction."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.core.models import hash_token
    from apps.monitoring import auth

    node, token = make_node()
    now = timezone.now()
    client = agent(token)
    assert client.post("/api/agent/heartbeats/", {"samples": [sample(now)]}, format="json").status_code == 201
    first_use = AgentToken.objects.get(node=node).last_used_at
    key = hash_token(token)
    # As if this process last saw the agent ten minutes ago.
    auth._seen[key] = (*auth._seen[key][:3], auth._seen[key][3] - timedelta(minutes=10))
    AgentToken.objects.filter(node=node).update(last_used_at=first_use - timedelta(minutes=10))
    with CaptureQueriesContext(connection) as queries:
        r = client.post("/api/agent/heartbeats/", {"samples": [sample(now - timedelta(seconds=5))]}, format="json")
    assert r.status_code == 201 and Heartbeat.objects.filter(node=node).count() == 2
    assert not [q for q in queries.captured_queries if "key_hash" in q["sql"]]
    assert AgentToken.objects.get(node=node).last_used_at > first_use - timedelta(minutes=10)
    # Recorded once: the next post within the minute writes no last-used time.
    with CaptureQueriesContext(connection) as queries:
        r = client.post("/api/agent/heartbeats/", {"samples": [sample(now - timedelta(seconds=10))]}, format="json")
    assert r.status_code == 201
    assert not [q for q in queries.captured_queries if "last_used_at" in q["sql"]]


def test_a_full_token_cache_forgets_its_oldest_agents_first(genesis, monkeypatch):
    from apps.core.models import hash_token
    from apps.monitoring import auth

    auth._seen.clear()
    monkeypatch.setattr(auth, "SEEN_MAX", 2)
    tokens = [make_node()[1] for _ in range(3)]
    now = timezone.now()
    for token in tokens:
        assert agent(token).post("/api/agent/heartbeats/", {"samples": [sample(now)]}, format="json").status_code == 201
    assert set(auth._seen) == {hash_token(t) for t in tokens[1:]}
    # The forgotten agent is looked up again, and still accepted.
    r = agent(tokens[0]).post(
        "/api/agent/heartbeats/", {"samples": [sample(now - timedelta(seconds=5))]}, format="json"
    )
    assert r.status_code == 201 and set(auth._seen) == {hash_token(t) for t in tokens[::2]}


def test_an_agents_batch_takes_the_fast_path_and_the_rest_the_view(genesis, monkeypatch):
    """An agent's ordinary post is answered without DRF (the view's ``post``
    is never called), with the same body and headers; a post the fast path
    does not read (a browser's Accept, indented JSON, a query string) gets
    the view's answer, and is stored the same way."""
    from apps.monitoring.api import AgentHeartbeats

    node, token = make_node()
    now = timezone.now()
    view_post = AgentHeartbeats.post
    monkeypatch.setattr(AgentHeartbeats, "post", lambda *a: pytest.fail("the fast path did not answer"))
    r = agent(token).post("/api/agent/heartbeats/", {"samples": [sample(now)]}, format="json")
    assert r.status_code == 201 and r.content == b'{"stored":1}'
    assert r["Content-Type"] == "application/json" and r["Allow"] == "POST, OPTIONS" and "Accept" in r["Vary"]
    calls = []
    monkeypatch.setattr(AgentHeartbeats, "post", lambda self, request: calls.append(1) or view_post(self, request))
    for i, extra in enumerate(
        ({"HTTP_ACCEPT": "text/html"}, {"HTTP_ACCEPT": "application/json; indent=4"}, {"QUERY_STRING": "format=json"})
    ):
        body = {"samples": [sample(now - timedelta(seconds=5 * (i + 1)))]}
        r = agent(token).post("/api/agent/heartbeats/", body, format="json", **extra)
        assert r.status_code == 201, (extra, r.content)
    assert len(calls) == 3 and Heartbeat.objects.filter(node=node).count() == 4


def test_a_throttled_agent_is_refused_and_each_post_counts_once(genesis, monkeypatch):
    """The fast path counts a post only once its batch is known good; a bad
    batch, answered by the view, counts there, once: at two a minute, a
    good, a bad and a good post leave the third refused, as before."""
    from django.core.cache import cache

    from apps.monitoring.api import AgentThrottle

    cache.clear()
    monkeypatch.setattr(AgentThrottle, "rate", "2/minute", raising=False)
    node, token = make_node()
    client, now = agent(token), timezone.now()
    assert client.post("/api/agent/heartbeats/", {"samples": [sample(now)]}, format="json").status_code == 201
    assert client.post("/api/agent/heartbeats/", {"samples": []}, format="json").status_code == 400
    r = client.post("/api/agent/heartbeats/", {"samples": [sample(now - timedelta(seconds=5))]}, format="json")
    assert r.status_code == 429 and Heartbeat.objects.filter(node=node).count() == 1


def test_a_token_is_touched_with_the_batch_it_brought(genesis):
    """The token's last-used time is recorded in the batch's own transaction
    (not a transaction of its own), about once a minute."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.monitoring import auth

    node, token = make_node()
    auth._seen.clear()
    with CaptureQueriesContext(connection) as queries:
        r = agent(token).post("/api/agent/heartbeats/", {"samples": [sample(timezone.now())]}, format="json")
    assert r.status_code == 201
    assert AgentToken.objects.get(node=node).last_used_at is not None
    # One transaction (here, inside the test's: one savepoint): the samples
    # and the token's last use together.
    assert len([q for q in queries.captured_queries if q["sql"].startswith("SAVEPOINT")]) == 1
    assert [q for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "last_used_at" in q["sql"]]

"""Heartbeat batches that arrive together share one commit
(``ingest.GroupCommit``), and each agent is still answered for its own batch
only: stored once committed, refused alone when its token was revoked, never
told "stored" for a batch that was not."""

import threading
import time

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from apps.core import ledger
from apps.core.models import AgentToken
from apps.core.parameters import ensure_defaults
from apps.monitoring import ingest
from apps.monitoring.models import Heartbeat

from ..factories import make_node

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def nodes():
    ensure_defaults()
    ledger.genesis()
    made = [make_node()[0] for _ in range(6)]
    return [(node, AgentToken.objects.get(node=node).pk) for node in made]


@pytest.fixture
def commits(monkeypatch):
    group_commit = ingest.GroupCommit()
    monkeypatch.setattr(ingest, "_heartbeat_commits", group_commit)
    return group_commit


def batch(node, util=50):
    sample = {
        "at": timezone.now().isoformat(),
        "gpu_util": util,
        "mem_used_mb": 1000,
        "mem_total_mb": 81920,
        "temperature_c": 50,
        "power_w": 300,
        "workloads": 0,
    }
    return ingest.parse_heartbeats(node.pk, {"samples": [sample]})


def post_together(commits, monkeypatch, posts, fail=None, holding=0):
    """Runs ``posts`` ((node, token id) pairs) each on a thread of its own:
    the first one's write is held until all the others are queued behind
    it, so they form the second group, which the second post leads (it is
    queued first). ``fail``: {node id: the exception its write raises}.
    ``holding``: how many of the last posts query the database before they
    post, as a token lookup does, so their thread holds a connection.
    Returns each post's outcome (``None`` for one that did not end)."""
    release, store, fail = threading.Event(), ingest._store, fail or {}
    first_node = posts[0][0].pk

    def held_store(rows, node_id, *args):
        if node_id == first_node:
            assert release.wait(10)
        if node_id in fail:
            raise fail[node_id]
        return store(rows, node_id, *args)

    monkeypatch.setattr(ingest, "_store", held_store)
    outcomes = {}

    def post(node, token_id, looks_up):
        try:
            if looks_up:
                assert AgentToken.objects.filter(pk=token_id).exists()
            ingest.store_heartbeats(batch(node), token_id=token_id)
            outcomes[node.pk] = "stored"
        except BaseException as exc:
            outcomes[node.pk] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(*pair, i >= len(posts) - holding)) for i, pair in enumerate(posts)]
    threads[0].start()
    while not commits.writing:
        time.sleep(0.01)
    threads[1].start()
    while not commits.queue:
        time.sleep(0.01)
    for t in threads[2:]:
        t.start()
    deadline = time.monotonic() + 10
    while len(commits.queue) < len(posts) - 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for t in threads:
        t.join(60)
    return [outcomes.get(node.pk) for node, _ in posts]


def test_batches_that_arrive_together_share_a_commit_and_all_land(nodes, commits, monkeypatch):
    assert post_together(commits, monkeypatch, nodes) == ["stored"] * 6
    assert commits.groups == 2 and commits.writes == 6
    assert all(Heartbeat.objects.filter(node=node).count() == 1 for node, _ in nodes)


def test_a_revoked_token_in_a_group_is_refused_alone(nodes, commits, monkeypatch):
    revoked_node, revoked_token = nodes[3]
    AgentToken.objects.filter(pk=revoked_token).delete()
    outcomes = post_together(commits, monkeypatch, nodes)
    assert isinstance(outcomes[3], ingest.TokenRevoked)
    assert outcomes[:3] + outcomes[4:] == ["stored"] * 5
    assert not Heartbeat.objects.filter(node=revoked_node).exists()
    assert Heartbeat.objects.count() == 5


def test_a_failed_write_is_reported_to_its_own_caller_only(nodes, commits, monkeypatch):
    failing = nodes[4][0]
    outcomes = post_together(commits, monkeypatch, nodes, fail={failing.pk: OperationalError("disk I/O error")})
    assert isinstance(outcomes[4], OperationalError)
    assert outcomes[:4] + outcomes[5:] == ["stored"] * 5
    assert not Heartbeat.objects.filter(node=failing).exists() and Heartbeat.objects.count() == 5


def test_a_group_whose_writer_is_interrupted_reports_nothing_stored(nodes, commits, monkeypatch):
    """A writer killed half-way (here, a BaseException in its transaction):
    the group rolls back and no agent of it is told its batch was stored."""
    outcomes = post_together(commits, monkeypatch, nodes[:4], fail={nodes[2][0].pk: KeyboardInterrupt()})
    assert outcomes[0] == "stored"
    assert all(isinstance(o, KeyboardInterrupt | ingest.NotStored) for o in outcomes[1:]), outcomes
    assert sum(isinstance(o, KeyboardInterrupt) for o in outcomes[1:]) == 1
    assert Heartbeat.objects.count() == 1


def test_inside_a_transaction_a_batch_is_written_in_it(nodes, commits):
    node, token_id = nodes[0]
    with pytest.raises(RuntimeError), transaction.atomic():
        ingest.store_heartbeats(batch(node), token_id=token_id)
        assert Heartbeat.objects.filter(node=node).count() == 1
        raise RuntimeError("roll back")
    assert not Heartbeat.objects.filter(node=node).exists() and commits.groups == 0


class Transient(Exception):
    pass


@pytest.mark.parametrize("group_size", [1, 3])
def test_a_write_that_meets_a_transient_error_is_written_again_once(nodes, group_size):
    """What ``retry`` accepts gets one more transaction (a partition attached
    under an insert: see test_heartbeat_partitions); a second failure, or
    any other error, is the caller's."""
    commits = ingest.GroupCommit(retry=lambda exc: isinstance(exc, Transient))
    tries: dict[str, int] = {}

    def write(name, failures, error=Transient):
        def run():
            tries[name] = tries.get(name, 0) + 1
            if tries[name] <= failures:
                raise error(name)

        return run

    jobs = [
        ingest._Job(write("once", 1)),
        ingest._Job(write("twice", 2)),
        ingest._Job(write("other", 1, error=ValueError)),
    ][:group_size]
    commits._commit(jobs, None)
    assert all(job.done for job in jobs)
    assert jobs[0].error is None and tries["once"] == 2
    if group_size == 3:
        # The group's transaction stopped at the first; then each alone,
        # with one more try for a transient error only.
        assert isinstance(jobs[1].error, Transient) and tries["twice"] == 2
        assert isinstance(jobs[2].error, ValueError) and tries["other"] == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="only PostgreSQL's connection pool is bounded")
def test_agents_holding_every_pooled_connection_never_starve_the_writer(commits, monkeypatch):
    """The agents queued behind a writer each hold a pooled connection from
    earlier in their request (their token looked up), as many as the pool
    has, and the next writer holds none. Each hands its connection back
    before it waits, so the writer gets one: every batch is stored at once,
    where before they waited for the writer and it for a connection until
    the pool's timeout refused them all."""
    ensure_defaults()
    ledger.genesis()
    size = connection.pool.max_size
    posts = [(node, AgentToken.objects.get(node=node).pk) for node in (make_node()[0] for _ in range(size + 2))]
    connection.close()  # the test's own connection back to the pool
    # The first writes (held); the second, holding no connection, leads next.
    assert post_together(commits, monkeypatch, posts, holding=size) == ["stored"] * len(posts)
    assert Heartbeat.objects.count() == len(posts)


def test_a_group_that_cannot_open_a_transaction_fails_at_once_not_write_by_write():
    """No transaction to be had (no database, no connection within the
    pool's timeout): every write of the group is refused with that error,
    none run, instead of each waiting as long again on its own."""
    commits = ingest.GroupCommit()
    ran = []
    jobs = [ingest._Job(lambda i=i: ran.append(i)) for i in range(3)]
    commits._commit(jobs, "no-such-database")
    assert all(job.done and job.error is not None for job in jobs) and ran == []
    assert len({id(job.error) for job in jobs}) == 1

"""The outbox and its relay: hints are rows of the writer's transaction, and
the relay publishes them in order, at least once, persisting how far it got.

The relay reads on a thread of its own, so these tests commit for real.
They drive it one round at a time with a channel layer that records what it
is given (and can fail on cue)."""

import asyncio
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from apps.core import events, ledger, outbox
from apps.core.amounts import ath
from apps.core.models import OutboxCursor, OutboxEvent
from apps.platform import relay

from ..factories import WalletFactory, fund

pytestmark = pytest.mark.django_db(transaction=True)


class Killed(BaseException):
    """The process dying mid-batch: nothing after it runs."""


class Layer:
    """A channel layer that records each group_send; ``fail_after`` sends it
    raises ``error`` instead."""

    def __init__(self, fail_after: int | None = None, error: BaseException | None = None):
        self.sent: list[tuple[str, dict]] = []
        self.fail_after, self.error = fail_after, error

    async def group_send(self, group, message):
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise self.error
        self.sent.append((group, message))


def write(*groups: str) -> list[int]:
    """One committed hint per group; returns their ids."""
    before = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    for group in groups:
        outbox.write([(group, {"type": "test.changed", "group": group})])
    return list(OutboxEvent.objects.filter(id__gt=before).order_by("id").values_list("id", flat=True))


def write_closing(*groups: str) -> list[int]:
    """``write`` from a thread of its own, which then gives its connection back."""
    try:
        return write(*groups)
    finally:
        connections.close_all()


def started(layer, **kwargs) -> relay.Relay:
    kwargs.setdefault("shared", False)
    kwargs.setdefault("name", "test")
    return asyncio.run(relay.Relay(layer, **kwargs).start())


def tick(r: relay.Relay) -> int:
    return asyncio.run(r.tick())


def position(name: str = "test") -> int:
    return OutboxCursor.objects.get(name=name).position


def test_a_hint_in_a_transaction_that_rolls_back_is_never_published():
    layer = Layer()
    r = started(layer)
    ledger.genesis()
    alice, bob = WalletFactory(), WalletFactory()
    fund(alice, ath(5))
    tick(r)
    layer.sent.clear()
    count = OutboxEvent.objects.count()

    with pytest.raises(RuntimeError), transaction.atomic():
        ledger.transfer(alice, bob, 1, memo="rolled back")
        outbox.write([("elsewhere", {"type": "test.changed"})])
        raise RuntimeError("the request failed after posting")
    with pytest.raises(RuntimeError), transaction.atomic(), events.batched():
        ledger.transfer(alice, bob, 1, memo="rolled back in a batch")
        raise RuntimeError("settlement failed half-way")
    assert OutboxEvent.objects.count() == count
    assert tick(r) == 0 and layer.sent == []

    tx = ledger.transfer(alice, bob, 1, memo="committed")
    assert tick(r) == 3
    assert layer.sent[0] == (events.LEDGER_GROUP, {"type": "ledger.changed", "height": tx.height, "kind": tx.kind})
    assert {g for g, _ in layer.sent[1:]} == {events.account_group(alice.pk), events.account_group(bob.pk)}


def test_the_relay_publishes_in_order_and_persists_its_cursor():
    layer = Layer()
    r = started(layer, batch=2)
    ids = write("a", "b", "c", "d", "e")
    assert tick(r) == 2 and position() == ids[1]
    while tick(r):
        pass
    assert [g for g, _ in layer.sent] == ["a", "b", "c", "d", "e"]
    assert position() == ids[-1]

    # A restarted process resumes at the persisted position: nothing again,
    # and what was written while it was down.
    ids = write("f")
    again = Layer()
    restarted = started(again)
    assert tick(restarted) == 1 and again.sent == [("f", {"type": "test.changed", "group": "f"})]
    assert position() == ids[-1]


def test_a_new_cursor_starts_at_the_newest_event():
    write("old")
    layer = Layer()
    r = started(layer, name="fresh")
    assert tick(r) == 0
    write("new")
    assert tick(r) == 1 and [g for g, _ in layer.sent] == ["new"]


def test_a_relay_killed_mid_batch_delivers_the_rest_after_its_restart():
    dying = Layer(fail_after=2, error=Killed())
    r = started(dying)
    ids = write("a", "b", "c", "d", "e")
    with pytest.raises(Killed):
        tick(r)
    assert [g for g, _ in dying.sent] == ["a", "b"]
    assert position() < ids[0]  # sent, but the cursor had not moved yet

    after = Layer()
    restarted = started(after)
    assert tick(restarted) == 5  # at least once: the first two again, then the rest
    assert [g for g, _ in after.sent] == ["a", "b", "c", "d", "e"]
    assert position() == ids[-1]


def test_a_failing_channel_layer_is_retried_from_the_first_event_it_refused():
    flaky = Layer(fail_after=2, error=ConnectionError("redis is restarting"))
    r = started(flaky)
    ids = write("a", "b", "c")
    assert tick(r) == 2 and position() == ids[1]
    assert tick(r) == 0 and r.failures == 2  # still down: tried again (less and less often), logged once
    flaky.fail_after = None
    assert tick(r) == 1 and r.failures == 0
    assert [g for g, _ in flaky.sent] == ["a", "b", "c"]  # each once
    assert position() == ids[2]


def test_an_event_the_layer_refuses_for_good_is_skipped_not_retried_for_ever():
    class Picky(Layer):
        async def group_send(self, group, message):
            if group == "bad":
                raise TypeError("Group name must be a valid unicode string")
            await super().group_send(group, message)

    layer = Picky()
    r = started(layer)
    ids = write("a", "bad", "c")
    assert tick(r) == 2 and [g for g, _ in layer.sent] == ["a", "c"]
    assert position() == ids[-1]


def test_an_id_that_commits_late_is_published_when_it_appears():
    """On PostgreSQL a transaction can commit after a later one: the relay
    publishes what it sees and keeps its cursor below the missing id."""
    layer = Layer()
    r = started(layer)
    [base] = write("start")
    tick(r)
    layer.sent.clear()
    now = timezone.now()
    OutboxEvent.objects.create(id=base + 2, group="second", message={"type": "t"}, created_at=now)
    assert tick(r) == 1 and position() == base  # base + 1 may still commit
    OutboxEvent.objects.create(id=base + 1, group="first", message={"type": "t"}, created_at=now)
    assert tick(r) == 1 and position() == base + 2
    assert [g for g, _ in layer.sent] == ["second", "first"]

    # A gap that never fills (a rolled-back transaction) is given up.
    r.gap_seconds = 0
    OutboxEvent.objects.create(id=base + 4, group="after-a-rollback", message={"type": "t"}, created_at=now)
    assert tick(r) == 1 and position() == base + 4


def test_prune_keeps_what_a_cursor_has_not_passed_and_what_is_recent():
    ids = write("a", "b", "c", "d")
    old = timezone.now() - relay.RETENTION - timedelta(seconds=1)
    OutboxEvent.objects.filter(id__in=ids[:3]).update(created_at=old)
    OutboxCursor.objects.create(name="slow", position=ids[1])
    OutboxCursor.objects.create(name="fast", position=ids[3])
    assert relay.prune() == 2  # a and b: old and passed by every cursor
    # c is old but the slow cursor has not passed it; d is recent.
    assert list(OutboxEvent.objects.order_by("id").values_list("group", flat=True)) == ["c", "d"]

    # A cursor nobody has moved for long (its process is gone) holds nothing back.
    OutboxCursor.objects.filter(name="slow").update(
        updated_at=timezone.now() - relay.CURSOR_STALE - timedelta(seconds=1)
    )
    assert relay.prune() == 1
    assert list(OutboxEvent.objects.values_list("group", flat=True)) == ["d"]


def test_on_a_shared_layer_one_relay_publishes_and_another_takes_over_from_its_cursor():
    layer = Layer()  # both processes' relays reach the same pages
    first = started(layer, shared=True, name=relay.SHARED, holder="worker-1")
    second = started(layer, shared=True, name=relay.SHARED, holder="worker-2")
    assert first.leading and not second.leading

    ids = write("a", "b")
    assert tick(first) + tick(second) == 2
    assert [g for g, _ in layer.sent] == ["a", "b"]  # once each
    assert OutboxCursor.objects.get(name=relay.SHARED).holder == "worker-1"

    # The leader's process dies: once its lease has run out the standby
    # leads, from the persisted cursor.
    OutboxCursor.objects.filter(name=relay.SHARED).update(expires_at=timezone.now() - timedelta(seconds=1))
    ids = write("c")
    second._lease_due = 0.0  # its next look at the lease is due
    assert tick(second) == 1 and second.leading
    assert [g for g, _ in layer.sent] == ["a", "b", "c"]
    assert position(relay.SHARED) == ids[-1]

    # The old leader, back, does not publish beside it.
    write("d")
    first._lease_due = 0.0
    assert tick(first) == 0 and not first.leading
    assert tick(second) == 1
    assert [g for g, _ in layer.sent] == ["a", "b", "c", "d"]


def test_a_leader_that_stops_hands_over_at_once():
    layer = Layer()
    first = started(layer, shared=True, name=relay.SHARED, holder="worker-1")
    second = started(layer, shared=True, name=relay.SHARED, holder="worker-2")
    asyncio.run(first.stop())
    write("a")
    second._lease_due = 0.0
    assert tick(second) == 1 and layer.sent[0][0] == "a"


def test_a_commit_in_this_process_wakes_the_relay_before_its_next_poll():
    layer = Layer()

    async def scenario():
        # It polls once, at the start, then only when woken.
        r = await relay.Relay(layer, shared=False, name="test", poll=3600).start()
        task = asyncio.get_running_loop().create_task(r.run())
        relay._relay = r
        try:
            await asyncio.sleep(0.2)
            await asyncio.to_thread(write_closing, "a")
            for _ in range(600):  # (a generous limit for a busy machine, not a bound)
                if layer.sent:
                    break
                await asyncio.sleep(0.05)
        finally:
            relay._relay = None
            await r.stop()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert [g for g, _ in layer.sent] == ["a"]


def test_a_relay_that_replaces_another_in_its_process_leads_at_once():
    # A process's relay whose loop closed without stopping it (a test's loop,
    # a restarted server loop) still holds the shared lease for a few
    # seconds; its successor in the same process must not stand by meanwhile.
    layer = Layer()
    first = started(layer, shared=True, name=relay.SHARED)
    assert first.leading
    second = started(layer, shared=True, name=relay.SHARED)
    assert second.leading
    write("a")
    assert tick(second) == 1 and layer.sent[0][0] == "a"
    # Another process's relay still stands by.
    assert not started(layer, shared=True, name=relay.SHARED, holder="elsewhere:1").leading

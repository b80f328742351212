"""Telemetry hints: at most one outbox row set a second per process, naming
every node that reported, written from the server's event loop; node pages
pick out their own."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from apps.core.models import OutboxEvent
from apps.monitoring import live


@pytest.fixture
def hints(monkeypatch):
    """A fresh coalescer that records what it would write."""
    written = []
    monkeypatch.setattr(live, "_telemetry", live._TelemetryHints(write=written.append))
    live._telemetry.written = written
    return live._telemetry


async def next_write(hints, count: int, timeout: float):
    for _ in range(int(timeout / 0.05)):
        if len(hints.written) >= count:
            return hints.written[count - 1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(hints.written)} hints written")


def telemetry_nodes(messages):
    [nodes] = [m["nodes"] for g, m in messages if g == live.TELEMETRY_GROUP]
    return nodes


@pytest.mark.asyncio
async def test_a_burst_of_heartbeats_is_one_hint_naming_every_node(hints):
    def burst():  # request threads, as under the ASGI server
        for node_id in (7, 3, 7, 9):
            hints.add(node_id)

    await sync_to_async(burst)()
    first = await next_write(hints, 1, 2)
    # The first node goes out at once; the rest wait for the next second.
    await sync_to_async(lambda: [hints.add(n) for n in (11, 12)])()
    second = await next_write(hints, 2, 3)
    got = set(telemetry_nodes(first)) | set(telemetry_nodes(second))
    assert got == {3, 7, 9, 11, 12}
    assert (live.OVERVIEW_GROUP, {"type": "monitoring.changed"}) in first
    await asyncio.sleep(1.5)
    assert len(hints.written) == 2  # nothing more: no row per heartbeat


def test_without_an_event_loop_the_hint_is_written_at_once(db):
    live._TelemetryHints().add(5)
    rows = {r.group: r.message for r in OutboxEvent.objects.all()}
    assert rows[live.TELEMETRY_GROUP] == {"type": "monitoring.telemetry", "nodes": [5]}
    assert rows[live.OVERVIEW_GROUP] == {"type": "monitoring.changed"}

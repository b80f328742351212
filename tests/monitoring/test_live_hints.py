"""Telemetry hints: one message a second per process names every node that
reported, sent from the server's event loop; node pages pick out their own."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from apps.monitoring import live


@pytest.fixture
def hints(monkeypatch):
    monkeypatch.setattr(live, "_telemetry", live._TelemetryHints())
    return live._telemetry


async def listen(group):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return layer, channel


@pytest.mark.asyncio
async def test_a_burst_of_heartbeats_is_one_hint_naming_every_node(hints):
    layer, channel = await listen(live.TELEMETRY_GROUP)

    def burst():  # request threads, as under the ASGI server
        for node_id in (7, 3, 7, 9):
            hints.add(node_id)

    await sync_to_async(burst)()
    first = await asyncio.wait_for(layer.receive(channel), 2)
    # The first node goes out at once; the rest wait for the next second.
    await sync_to_async(lambda: [hints.add(n) for n in (11, 12)])()
    second = await asyncio.wait_for(layer.receive(channel), 3)
    got = set(first["nodes"]) | set(second["nodes"])
    assert first["type"] == "monitoring.telemetry" and got == {3, 7, 9, 11, 12}
    with pytest.raises(asyncio.TimeoutError):  # nothing more: no message per node
        await asyncio.wait_for(layer.receive(channel), 1.5)


def test_without_an_event_loop_the_hint_goes_out_at_once(hints, monkeypatch):
    sent = []
    monkeypatch.setattr(live, "send_many", lambda messages: sent.extend(messages))
    hints.add(5)
    assert (live.TELEMETRY_GROUP, {"type": "monitoring.telemetry", "nodes": [5]}) in sent
    assert (live.OVERVIEW_GROUP, {"type": "monitoring.changed"}) in sent


@pytest.mark.asyncio
async def test_a_node_page_refreshes_only_for_its_own_node(monkeypatch):
    from apps.monitoring.consumers import NodeConsumer

    consumer = NodeConsumer()
    consumer.node_id = 4
    calls = []

    async def changed(event=None):
        calls.append(event)

    monkeypatch.setattr(consumer, "changed", changed)
    await consumer.monitoring_telemetry({"type": "monitoring.telemetry", "nodes": [1, 2, 3]})
    assert calls == []
    await consumer.monitoring_telemetry({"type": "monitoring.telemetry", "nodes": [3, 4]})
    await consumer.monitoring_telemetry({"type": "monitoring.telemetry", "nodes": None})  # "every node"
    assert len(calls) == 2

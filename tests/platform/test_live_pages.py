"""Public live pages fan out once per process: however many browsers show
the same page, the process holds one channel-layer subscription per group
and renders once per change, every socket gets the update, a change hinted
while a render runs is pushed after it, and the last socket to leave ends
the subscription."""

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator

from aethir_web.asgi import application
from apps.core import ledger
from apps.core.amounts import ath
from apps.core.events import LEDGER_GROUP
from apps.explorer import consumers as feed
from apps.explorer.consumers import LedgerFeedConsumer
from apps.marketplace.consumers import RentalConsumer
from apps.monitoring.consumers import CheckerConsumer, NodeConsumer, OverviewConsumer
from apps.notifications.consumers import BellConsumer
from apps.overview.consumers import HomeConsumer
from apps.platform import live_pages

from ..factories import WalletFactory, fund


class Socket:
    """Stands for one browser's consumer: what the hub reads and calls."""

    min_interval = 0.2
    accepted = True

    def __init__(self, layer, renders, gate=None, node=None):
        self.renders, self.gate, self.node = renders, gate, node
        self.frames: list[str] = []

    def groups_for(self):
        return ["page-a", "page-b"]

    def wants(self, event):
        return event.get("node") in (None, self.node)

    def render(self):
        self.renders.append(1)
        if self.gate is not None:
            self.gate.wait(5)
        return f"render {len(self.renders)}"

    async def send(self, text_data):
        self.frames.append(text_data)


async def settle(condition, timeout=3.0):
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


@pytest.mark.asyncio
async def test_many_sockets_share_one_subscription_and_one_render_per_change():
    layer, renders = InMemoryChannelLayer(), []
    hub = live_pages.Hub()
    sockets = [Socket(layer, renders) for _ in range(300)]
    for s in sockets:
        await hub.join(s, ("page", "/x/"), layer)
    # One membership per group for the whole process, not one per socket.
    assert {g: len(m) for g, m in layer.groups.items()} == {"page-a": 1, "page-b": 1}

    await layer.group_send("page-a", {"type": "x.changed"})
    await settle(lambda: all(s.frames for s in sockets))
    assert renders == [1]
    assert {s.frames[0] for s in sockets} == {"render 1"}

    # A hint the page does not want (another node's telemetry) pushes nothing.
    await asyncio.sleep(0.3)
    await layer.group_send("page-b", {"type": "x.telemetry", "node": 9})
    await asyncio.sleep(0.4)
    assert renders == [1]

    for s in sockets[:-1]:
        await hub.leave(s, ("page", "/x/"))
    assert len(layer.groups["page-a"]) == 1  # one socket still open
    await hub.leave(sockets[-1], ("page", "/x/"))
    assert not any(layer.groups.get(g) for g in ("page-a", "page-b"))
    assert hub.pages == {} and hub.subscriptions == {}


@pytest.mark.asyncio
async def test_a_change_hinted_during_a_render_is_pushed_after_it():
    layer, renders, gate = InMemoryChannelLayer(), [], threading.Event()
    hub = live_pages.Hub()
    socket = Socket(layer, renders, gate=gate)
    await hub.join(socket, ("page", "/x/"), layer)

    await layer.group_send("page-a", {"type": "x.changed"})
    await settle(lambda: renders)  # the first render is running (held at the gate)
    await layer.group_send("page-a", {"type": "x.changed"})  # committed after its queries began
    await layer.group_send("page-b", {"type": "x.changed"})
    await asyncio.sleep(0.05)
    gate.set()
    await settle(lambda: len(socket.frames) == 2)
    assert socket.frames == ["render 1", "render 2"]  # one more, not one per hint
    await asyncio.sleep(0.5)
    assert len(socket.frames) == 2
    await hub.leave(socket, ("page", "/x/"))


@pytest.mark.asyncio
async def test_pages_of_other_urls_or_languages_render_on_their_own():
    layer, renders = InMemoryChannelLayer(), []
    hub = live_pages.Hub()
    a, b, c = (Socket(layer, renders) for _ in range(3))
    await hub.join(a, ("page", "/x/", "en"), layer)
    await hub.join(b, ("page", "/x/", "id"), layer)
    await hub.join(c, ("page", "/y/", "en"), layer)
    assert len(layer.groups["page-a"]) == 1
    await layer.group_send("page-a", {"type": "x.changed"})
    await settle(lambda: a.frames and b.frames and c.frames)
    assert len(renders) == 3
    for s, key in ((a, ("page", "/x/", "en")), (b, ("page", "/x/", "id")), (c, ("page", "/y/", "en"))):
        await hub.leave(s, key)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_open_ledger_feeds_get_each_transaction_from_one_render(monkeypatch):
    await database_sync_to_async(ledger.genesis)()
    alice, bob = await database_sync_to_async(lambda: (WalletFactory(), WalletFactory()))()
    await database_sync_to_async(fund)(alice, ath(5))
    renders = []

    def counted():
        renders.append(1)
        return feed.render_feed()

    monkeypatch.setattr(LedgerFeedConsumer, "render", lambda self: counted())
    browsers = [
        WebsocketCommunicator(application, "/ws/ledger/", headers=[(b"origin", b"http://localhost")]) for _ in range(20)
    ]
    for ws in browsers:
        assert (await ws.connect())[0]
    layer = get_channel_layer()
    in_memory = isinstance(layer, InMemoryChannelLayer)  # Redis keeps its groups on the server
    if in_memory:
        assert len(layer.groups[LEDGER_GROUP]) == 1

    await database_sync_to_async(ledger.transfer)(alice, bob, 1, memo="seen by all")
    frames = [await ws.receive_from(timeout=5) for ws in browsers]
    assert all("seen by all" in html for html in frames)
    assert len(renders) == 1
    for ws in browsers:
        await ws.disconnect()
    if in_memory:
        assert not layer.groups.get(LEDGER_GROUP)


def test_a_node_page_refreshes_only_for_its_own_node():
    consumer = NodeConsumer()
    consumer.node_id = 4
    assert not consumer.wants({"type": "monitoring.telemetry", "nodes": [1, 2, 3]})
    assert consumer.wants({"type": "monitoring.telemetry", "nodes": [3, 4]})
    assert consumer.wants({"type": "monitoring.telemetry", "nodes": None})  # "every node"
    assert consumer.wants({"type": "monitoring.changed"})


def test_only_public_pages_share():
    assert all(c.shared for c in (HomeConsumer, OverviewConsumer, NodeConsumer, CheckerConsumer, LedgerFeedConsumer))
    assert not any(c.shared for c in (BellConsumer, RentalConsumer))
    # A shared page's socket has no channel of its own: it hears through the hub.
    assert LedgerFeedConsumer.channel_layer_alias is None and BellConsumer.channel_layer_alias == "default"

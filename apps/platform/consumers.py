"""The base of every live page's WebSocket consumer.

A page opens a socket through htmx's ws extension; the consumer listens to
some Channels groups, and every hint that arrives on them (written to the
outbox by whichever process made the change, published by the web server's
relay: see ``outbox.py`` and ``relay.py``) schedules one re-render of the
page's live fragment, sent as htmx out-of-band swaps. Bursts are coalesced:
at most one render per ``min_interval`` seconds, and the render always
reflects the latest state, so nothing is lost by skipping hints (nor by a
hint the relay sends twice).

Public pages (``shared = True``) are the same for everyone on the same URL:
their sockets join the process's ``live_pages`` hub, which subscribes once
per group and renders once per page for all of them. A page that shows the
visitor's own data keeps a group membership and a schedule per socket.
"""

import asyncio
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.utils.translation import get_language

from . import live_pages, relay


class CoalescedFragmentConsumer(AsyncWebsocketConsumer):
    min_interval = 1.0
    # Public pages whose fragment is the same for everyone who opens the
    # same URL share one subscription and one render per process (see
    # ``live_pages``); never a page that shows the visitor's own data.
    shared = False
    accepted = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.shared:
            # A shared page's socket hears through its process's subscription
            # (``live_pages``): no channel of its own, so no receive pending
            # on the layer per socket (a thousand of them on Redis).
            cls.channel_layer_alias = None

    def groups_for(self) -> list[str]:
        raise NotImplementedError

    def render(self) -> str:
        """Return the HTML to push (runs in a thread; may use the ORM)."""
        raise NotImplementedError

    def wants(self, event: dict) -> bool:
        """Whether a hint on one of the page's groups changes what it shows."""
        return True

    async def accept_or_close(self) -> bool:
        """Override to refuse a connection (e.g. an unknown object)."""
        return True

    async def connect(self):
        self._last_sent = 0.0
        self._pending: asyncio.Task | None = None
        self._again = False
        if not await self.accept_or_close():
            await self.close()
            return
        # The relay runs before the page listens: every change committed
        # from now on reaches it, whichever process commits it.
        await relay.ensure_running()
        if self.shared:
            self._page_key = (type(self), self.scope.get("path"), get_language())
            await live_pages.hub().join(self, self._page_key, get_channel_layer())
        else:
            self._groups = self.groups_for()
            for group in self._groups:
                await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.accepted = True

    async def disconnect(self, code):
        self.accepted = False
        if getattr(self, "_page_key", None):
            await live_pages.hub().leave(self, self._page_key)
        for group in getattr(self, "_groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        if getattr(self, "_pending", None):
            self._pending.cancel()

    async def receive(self, text_data=None, bytes_data=None):
        return  # one-way feeds

    # A socket of its own (not shared): the same schedule as a hub page.
    async def changed(self, event=None):
        if event is not None and not self.wants(event):
            return
        if self._pending and not self._pending.done():
            self._again = True  # scheduled or rendering: push once more afterwards
            return
        self._schedule()

    def _schedule(self):
        delay = max(0.0, self.min_interval - (time.monotonic() - self._last_sent))
        self._pending = asyncio.ensure_future(self._send_after(delay))

    async def _send_after(self, delay: float):
        if delay:
            await asyncio.sleep(delay)
        self._again = False
        html = await database_sync_to_async(self.render)()
        self._last_sent = time.monotonic()
        await self.send(text_data=html)
        if self._again:
            self._schedule()

    # Channels dispatches on the message type: "ledger.changed" -> ledger_changed.
    async def ledger_changed(self, event):
        await self.changed(event)

    async def monitoring_changed(self, event):
        await self.changed(event)

    async def monitoring_telemetry(self, event):
        await self.changed(event)

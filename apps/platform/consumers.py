"""The base of every live page's WebSocket consumer.

A page opens a socket through htmx's ws extension; the consumer joins some
Channels groups, and every hint that arrives on them (written to the outbox
by whichever process made the change, published by the web server's relay:
see ``outbox.py`` and ``relay.py``) schedules one re-render of the page's
live fragment, sent as htmx out-of-band swaps. Bursts are coalesced: at
most one render per ``min_interval`` seconds per connection, and the render
always reflects the latest state, so nothing is lost by skipping hints (nor
by a hint the relay sends twice).
"""

import asyncio
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from . import relay


class CoalescedFragmentConsumer(AsyncWebsocketConsumer):
    min_interval = 1.0

    def groups_for(self) -> list[str]:
        raise NotImplementedError

    def render(self) -> str:
        """Return the HTML to push (runs in a thread; may use the ORM)."""
        raise NotImplementedError

    async def accept_or_close(self) -> bool:
        """Override to refuse a connection (e.g. an unknown object)."""
        return True

    async def connect(self):
        self._last_sent = 0.0
        self._pending: asyncio.Task | None = None
        if not await self.accept_or_close():
            await self.close()
            return
        # The relay runs before the page listens: every change committed
        # from now on reaches it, whichever process commits it.
        await relay.ensure_running()
        self._groups = self.groups_for()
        for group in self._groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "_groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        if getattr(self, "_pending", None):
            self._pending.cancel()

    async def receive(self, text_data=None, bytes_data=None):
        return  # one-way feeds

    async def changed(self, event=None):
        if self._pending and not self._pending.done():
            return  # an update is already scheduled and will include this change
        delay = max(0.0, self.min_interval - (time.monotonic() - self._last_sent))
        self._pending = asyncio.ensure_future(self._send_after(delay))

    async def _send_after(self, delay: float):
        if delay:
            await asyncio.sleep(delay)
        html = await database_sync_to_async(self.render)()
        self._last_sent = time.monotonic()
        await self.send(text_data=html)

    # Channels dispatches on the message type: "ledger.changed" -> ledger_changed.
    async def ledger_changed(self, event):
        await self.changed(event)

    async def monitoring_changed(self, event):
        await self.changed(event)

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
from django.utils.translation import get_language

from . import relay

# Renders in flight or just finished, per page, shared by every connection
# of this process that shows the same page: a thousand browsers on the
# overview cost one render per change, not a thousand.
_renders: dict[tuple, tuple[float, asyncio.Future]] = {}


async def shared_render(key: tuple, not_before: float, render) -> str:
    """The HTML of ``render`` (a blocking function), from a render of the
    same ``key`` that started at or after ``not_before`` (so it saw every
    change hinted before then), or a new one."""
    entry = _renders.get(key)
    if entry is None or entry[0] < not_before:
        started = time.monotonic()
        entry = (started, asyncio.ensure_future(database_sync_to_async(render)()))
        _renders[key] = entry
        if len(_renders) > 10_000:  # keys of pages nobody watches any more
            for k in [k for k, (t, f) in _renders.items() if f.done() and t < started - 60]:
                del _renders[k]
    return await asyncio.shield(entry[1])


class CoalescedFragmentConsumer(AsyncWebsocketConsumer):
    min_interval = 1.0
    # Public pages whose fragment is the same for everyone who opens the
    # same URL share their renders (see ``shared_render``); never a page
    # that shows the visitor's own data.
    shared = False

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
        self._hinted = 0.0
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
        self._hinted = time.monotonic()
        if self._pending and not self._pending.done():
            return  # an update is already scheduled and will include this change
        delay = max(0.0, self.min_interval - (time.monotonic() - self._last_sent))
        self._pending = asyncio.ensure_future(self._send_after(delay))

    async def _send_after(self, delay: float):
        if delay:
            await asyncio.sleep(delay)
        if self.shared:
            # A render that started after the latest hint arrived saw its change.
            html = await shared_render((type(self), self.scope.get("path"), get_language()), self._hinted, self.render)
        else:
            html = await database_sync_to_async(self.render)()
        self._last_sent = time.monotonic()
        await self.send(text_data=html)

    # Channels dispatches on the message type: "ledger.changed" -> ledger_changed.
    async def ledger_changed(self, event):
        await self.changed(event)

    async def monitoring_changed(self, event):
        await self.changed(event)

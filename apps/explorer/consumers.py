"""The live ledger feed.

Pages open ``/ws/ledger/`` through htmx's ws extension. Each ledger change
arrives as a small hint; the consumer re-renders the latest-transactions
table and sends it as an out-of-band swap. Bursts are coalesced: at most one
render per ``MIN_INTERVAL`` seconds, however many transactions commit.
"""

import asyncio
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from apps.core.events import LEDGER_GROUP

from . import queries

MIN_INTERVAL = 1.0
LIVE_ROWS = 25


def render_feed() -> str:
    context = {
        "page": {"object_list": list(queries.transactions()[:LIVE_ROWS])},
        "summary": queries.summary(),
        "live": True,
        "oob": True,
    }
    return render_to_string("explorer/_feed.html", context)


class LedgerFeedConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self._last_sent = 0.0
        self._pending: asyncio.Task | None = None
        await self.channel_layer.group_add(LEDGER_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(LEDGER_GROUP, self.channel_name)
        if self._pending:
            self._pending.cancel()

    async def receive(self, text_data=None, bytes_data=None):
        # The feed is one-way; ignore whatever the browser sends.
        return

    async def ledger_changed(self, event):
        if self._pending and not self._pending.done():
            return  # an update is already scheduled and will include this change
        delay = max(0.0, MIN_INTERVAL - (time.monotonic() - self._last_sent))
        self._pending = asyncio.ensure_future(self._send_after(delay))

    async def _send_after(self, delay: float):
        if delay:
            await asyncio.sleep(delay)
        html = await database_sync_to_async(render_feed)()
        self._last_sent = time.monotonic()
        await self.send(text_data=html)

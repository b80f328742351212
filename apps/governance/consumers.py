"""Live tallies: a proposal page opens ``/ws/governance/<id>/`` through
htmx's ws extension. Each committed vote (or status change) arrives as a hint;
the consumer re-renders the tally, the voter list and the status tag and sends
them as out-of-band swaps. Bursts are coalesced: at most one render per
``MIN_INTERVAL`` seconds per connection, however many votes commit, and the
last render always reflects the latest vote.
"""

import asyncio
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from apps.platform import relay

from . import queries
from .live import proposal_group
from .models import Proposal

MIN_INTERVAL = 1.0


def render_live(proposal_id: int, voters_page: int = 1) -> str | None:
    proposal = Proposal.objects.select_related("proposer").filter(pk=proposal_id).first()
    if proposal is None:
        return None
    context = queries.tally_context(proposal, voters_page)
    context["oob"] = True
    return render_to_string("governance/_live.html", context)


class ProposalConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.proposal_id = int(self.scope["url_route"]["kwargs"]["pk"])
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            self.voters_page = max(1, int((query.get("voters") or ["1"])[0]))
        except ValueError:
            self.voters_page = 1
        exists = await database_sync_to_async(Proposal.objects.filter(pk=self.proposal_id).exists)()
        if not exists:
            await self.close()
            return
        self._last_sent = 0.0
        self._pending: asyncio.Task | None = None
        self.group = proposal_group(self.proposal_id)
        await relay.ensure_running()  # see apps.platform.consumers
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if getattr(self, "_pending", None):
            self._pending.cancel()

    async def receive(self, text_data=None, bytes_data=None):
        # One-way: votes go through the page's form or the API, never this socket.
        return

    async def tally_changed(self, event):
        if self._pending and not self._pending.done():
            return  # an update is already scheduled; it renders after this change committed
        delay = max(0.0, MIN_INTERVAL - (time.monotonic() - self._last_sent))
        self._pending = asyncio.ensure_future(self._send_after(delay))

    async def _send_after(self, delay: float):
        if delay:
            await asyncio.sleep(delay)
        html = await database_sync_to_async(render_live)(self.proposal_id, self.voters_page)
        self._last_sent = time.monotonic()
        if html:
            await self.send(text_data=html)

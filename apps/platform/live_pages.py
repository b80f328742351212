"""Public live pages, fanned out once per process.

A public page's fragment is the same for everyone who opens the same URL in
the same language (the network overview, a node, a checker, the ledger
feed). With one Channels group membership per open socket, a change seen by
a thousand browsers cost a thousand channel-layer deliveries, a thousand
consumer wake-ups and a thousand scheduled sends (about a millisecond of the
worker's time per browser), and with Redis a thousand list pushes per
change. Here each process instead:

* subscribes once to each group its open public pages listen to (one
  channel of its own per group, whatever the number of sockets);
* keeps, per page (consumer class, path, language), the open sockets and
  one schedule: at most one render per ``min_interval``, rendered once and
  written to every socket of the page in a tight loop.

A hint that arrives while a page is being rendered schedules one more push
after it, so the last push always reflects the last change. Pages that show
the visitor's own data never come here (see ``consumers.py``).
"""

import asyncio
import logging
import time
import weakref

from channels.db import database_sync_to_async

log = logging.getLogger(__name__)

# Channel layers forget a group membership after a day (``group_expiry``);
# a subscription outlives any one socket, so it renews itself well before.
RENEW_SECONDS = 3600.0
RETRY_SECONDS = 1.0
# Sockets written between two yields to the event loop: a push to thousands
# of sockets does not hold up the requests the same process is serving.
SEND_SLICE = 200


class Page:
    """The open sockets of one public page in this process."""

    def __init__(self, hub: "Hub", key: tuple, first):
        self.hub, self.key = hub, key
        self.groups = list(first.groups_for())
        self.min_interval = first.min_interval
        # Every socket of a page renders the same: the first one's methods
        # stand for all (they read only what the URL names).
        self.render, self.wants = first.render, first.wants
        self.sockets: dict = {}  # insertion-ordered set of consumers
        self.last_sent = 0.0
        self.pending: asyncio.Task | None = None
        self.again = False
        self.renders = 0

    def hint(self, event: dict) -> None:
        if not self.wants(event):
            return
        if self.pending and not self.pending.done():
            # Already scheduled or rendering: push once more afterwards, so a
            # change committed after the render's queries began is not lost.
            self.again = True
            return
        self._schedule()

    def _schedule(self) -> None:
        delay = max(0.0, self.min_interval - (time.monotonic() - self.last_sent))
        self.pending = asyncio.ensure_future(self._push(delay))

    async def _push(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        self.again = False
        try:
            html = await database_sync_to_async(self.render)()
        except Exception:
            log.exception("live page %s failed to render", self.key[1])
            html = None
        self.renders += 1
        self.last_sent = time.monotonic()
        if html is not None:
            await self._write(html)
        if self.again and self.sockets:
            self._schedule()

    async def _write(self, html: str) -> None:
        for i, socket in enumerate(list(self.sockets)):
            if i and i % SEND_SLICE == 0:
                await asyncio.sleep(0)
            if socket not in self.sockets or not socket.accepted:
                continue  # closed while an earlier slice was written, or not open yet
            try:
                await socket.send(text_data=html)
            except Exception:
                # One broken socket never keeps the page from the others.
                log.debug("live page %s: a socket refused the update", self.key[1], exc_info=True)


class Subscription:
    """One channel of this process in one group, read by one task that hands
    each hint to the pages listening to the group."""

    def __init__(self, layer, group: str):
        self.layer, self.group = layer, group
        self.pages: dict[tuple, Page] = {}
        self.channel: str | None = None
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        renewed = time.monotonic()
        while True:
            try:
                if time.monotonic() - renewed > RENEW_SECONDS:
                    await self.layer.group_add(self.group, self.channel)
                    renewed = time.monotonic()
                try:
                    event = await asyncio.wait_for(self.layer.receive(self.channel), RENEW_SECONDS)
                except TimeoutError:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                # A layer that is down (Redis restarting): hints are delayed,
                # not lost, since the outbox relay retries what it could not send.
                log.warning("live pages: reading group %s failed; retrying", self.group, exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            for page in list(self.pages.values()):
                page.hint(event)

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        try:
            await self.layer.group_discard(self.group, self.channel)
        except Exception:
            log.warning("live pages: leaving group %s failed", self.group, exc_info=True)


class Hub:
    """The public pages open in this process (one hub per event loop)."""

    def __init__(self):
        self.pages: dict[tuple, Page] = {}
        self.subscriptions: dict[tuple, Subscription] = {}
        self._lock = asyncio.Lock()

    async def join(self, consumer, key: tuple, layer) -> Page:
        """Add ``consumer``'s socket to its page, subscribing the process to
        the page's groups on ``layer`` first if no socket here listens to
        them yet."""
        async with self._lock:  # two first sockets of a page subscribe once
            page = self.pages.get(key)
            if page is None:
                page = self.pages[key] = Page(self, key, consumer)
                for group in page.groups:
                    sub_key = (id(layer), group)
                    sub = self.subscriptions.get(sub_key)
                    if sub is None:
                        sub = Subscription(layer, group)
                        await sub.start()
                        self.subscriptions[sub_key] = sub
                    sub.pages[key] = page
            page.sockets[consumer] = None
            return page

    async def leave(self, consumer, key: tuple) -> None:
        async with self._lock:
            page = self.pages.get(key)
            if page is None or page.sockets.pop(consumer, False) is False:
                return
            if page.sockets:
                return
            del self.pages[key]
            if page.pending:
                page.pending.cancel()
            for sub_key, sub in list(self.subscriptions.items()):
                sub.pages.pop(key, None)
                if not sub.pages:
                    del self.subscriptions[sub_key]
                    await sub.stop()


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]" = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """This event loop's hub (a test suite runs a loop per test; a server one)."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        found = _hubs[loop] = Hub()
    return found

"""Publishing the outbox: the relay inside each web server process.

Writers record live-page hints as outbox rows in their own transactions
(``apps/core/outbox.py``), from any process: a web worker, the scheduler
settling an epoch, the simulators. The relay runs on the web server's event
loop, reads the new rows in id order, in batches, and sends each to its
Channels group; the consumers of open pages re-render (``consumers.py``).
It polls every ``POLL_SECONDS`` and is woken at once when its own process
commits a hint, so a page served by the writing process hears as fast as
when the writer sent the hint itself.

Who publishes:

* a shared channel layer (Redis) reaches every process's pages, so exactly
  one relay publishes: the one holding the lease on the ``shared`` cursor
  row. The others stand by and take over, from the persisted cursor, when
  the lease expires (its holder died);
* the in-memory layer only reaches its own process's pages, so every web
  process relays every event into its own layer, with a cursor of its own
  (one per ``manage.py serve`` worker slot), so a restarted process still
  publishes what was written while it was down.

Delivery is at least once: a batch is sent before the cursor moves past it,
so a relay killed mid-batch sends the rest (and perhaps a few again) after
its restart; pages only re-render on a hint, so a repeat costs nothing.
Writers never wait for the relay or the channel layer: a slow or dead layer
only delays the hints, which the relay retries.

Ids are handed out when rows are inserted, not when they commit: on
PostgreSQL a transaction holding id 10 can commit after the one holding 11.
The relay publishes 11 at once and keeps watching the missing id (a
"gap") for ``GAP_SECONDS``; its persisted cursor stays below the oldest gap.
A gap that never fills (a rolled-back transaction) is given up after that.
On SQLite writers take turns, so ids arrive in order and there are no gaps.

Delivered rows older than ``RETENTION`` are pruned every ``PRUNE_EVERY``
seconds, never above a cursor that is still in use.
"""

import asyncio
import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import connections, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from apps.core.models import OutboxCursor, OutboxEvent

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
BATCH = 500
SEND_TIMEOUT = 5.0  # one group_send; past it the layer counts as down and the batch is retried
LEASE_SECONDS = 5.0  # a dead leader's successor publishes within about this long
GAP_SECONDS = 30.0
MAX_GAPS = 100
PRUNE_EVERY = 30.0
RETENTION = timedelta(minutes=5)
CURSOR_STALE = timedelta(hours=1)  # a cursor untouched this long no longer holds rows back
RETRY_START = 10.0
MAX_BACKOFF = 5.0  # the longest pause between tries while the channel layer is down
SHARED = "shared"
# What a layer raises for a message it will never take (a bad group name, not
# a dict): skipped with a warning rather than retried for ever.
REFUSED = (TypeError, ValueError, AssertionError)

# The relay's database work runs on one thread of its own, never on the loop
# and never queued behind the requests' threads.
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-relay")


def is_shared(layer) -> bool:
    """Whether ``layer`` reaches the pages of every process (Redis) rather
    than only this one's (in-memory)."""
    return not isinstance(layer, InMemoryChannelLayer)


# Who holds the shared lease: this process, whichever of its relays runs.
# A relay replaced by another in the same process (a loop that was closed
# and opened again, as a test suite does per test) leaves a lease that is
# still its process's, so the new relay leads at once instead of standing by
# until the old lease runs out while the hints written meanwhile wait.
_holders: dict[int, str] = {}


def process_holder() -> str:
    """This process's lease holder name (a forked child gets its own)."""
    pid = os.getpid()
    if pid not in _holders:
        _holders[pid] = f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}"[:120]
    return _holders[pid]


def local_cursor_name() -> str:
    """The cursor of this process on the in-memory layer: one per host and
    worker slot (``manage.py serve`` numbers its workers in
    ``AETHIR_RELAY_SLOT``), so a restarted worker resumes where it stopped."""
    return f"local:{socket.gethostname()}:{os.environ.get('AETHIR_RELAY_SLOT', '0')}"[:120]


# --- The database side (synchronous; the relay runs these on its thread) --------------


def ensure_cursor(name: str) -> int:
    """The persisted position of cursor ``name``. A new cursor starts at the
    newest event: the past has already been shown by the pages it changed."""
    position = OutboxCursor.objects.filter(name=name).values_list("position", flat=True).first()
    if position is not None:
        return position
    newest = OutboxEvent.objects.aggregate(newest=Max("id"))["newest"] or 0
    with transaction.atomic():
        cursor, _ = OutboxCursor.objects.get_or_create(name=name, defaults={"position": newest})
    return cursor.position


def acquire(name: str, holder: str, seconds: float) -> bool:
    """Take or renew the lease on cursor ``name``; True if ``holder`` holds
    it now. A standby only reads while someone else's lease runs."""
    ensure_cursor(name)
    now = timezone.now()
    if OutboxCursor.objects.filter(name=name, expires_at__gte=now).exclude(holder=holder).exists():
        return False
    free_or_mine = Q(holder=holder) | Q(expires_at__lt=now) | Q(expires_at__isnull=True)
    with transaction.atomic():  # one conditional UPDATE: atomic on SQLite and PostgreSQL alike
        return bool(
            OutboxCursor.objects.filter(free_or_mine, name=name).update(
                holder=holder, expires_at=now + timedelta(seconds=seconds)
            )
        )


def release(name: str, holder: str) -> None:
    with transaction.atomic():
        OutboxCursor.objects.filter(name=name, holder=holder).update(expires_at=timezone.now())


def save_position(name: str, position: int, holder: str | None = None) -> bool:
    """Persist a cursor; with ``holder``, only while the lease is still
    theirs (a relay that lost it must not move its successor's cursor)."""
    rows = OutboxCursor.objects.filter(name=name)
    if holder is not None:
        rows = rows.filter(holder=holder)
    with transaction.atomic():
        return bool(rows.update(position=position, updated_at=timezone.now()))


def fetch(after: int, gaps: list[tuple[int, int]], limit: int) -> list[tuple[int, str, dict]]:
    """Up to ``limit`` events after id ``after``, plus any that have appeared
    in the ``gaps`` (id ranges) below it, in id order."""
    columns = ("id", "group", "message")
    rows = list(OutboxEvent.objects.filter(id__gt=after).order_by("id").values_list(*columns)[:limit])
    if gaps:
        within = Q()
        for lo, hi in gaps:
            within |= Q(id__range=(lo, hi))
        rows += OutboxEvent.objects.filter(within).values_list(*columns)
        rows.sort(key=lambda row: row[0])
    return rows


def prune(now=None) -> int:
    """Delete events older than ``RETENTION`` that every cursor in use has
    passed; returns how many. One statement over the id range below the
    slowest cursor, which holds only the last few minutes' rows."""
    now = now or timezone.now()
    floor = OutboxCursor.objects.filter(updated_at__gte=now - CURSOR_STALE).aggregate(floor=Min("position"))["floor"]
    old = OutboxEvent.objects.filter(created_at__lt=now - RETENTION)
    if floor is not None:
        old = old.filter(id__lte=floor)
    with transaction.atomic():
        deleted, _ = old.delete()
    return deleted


def _closing(fn, args):
    try:
        return fn(*args)
    finally:
        connections.close_all()  # back to the pool: the relay never sits on a connection


# --- The relay ----------------------------------------------------------------------


class Relay:
    def __init__(
        self,
        layer,
        *,
        shared: bool | None = None,
        name: str | None = None,
        holder: str | None = None,
        batch: int = BATCH,
        poll: float = POLL_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
        gap_seconds: float = GAP_SECONDS,
    ):
        self.layer = layer
        self.shared = is_shared(layer) if shared is None else shared
        self.name = name or (SHARED if self.shared else local_cursor_name())
        self.holder = holder or process_holder()
        self.batch, self.poll = batch, poll
        self.lease_seconds, self.gap_seconds = lease_seconds, gap_seconds
        self.leading = not self.shared  # on the in-memory layer every process publishes
        self.position: int | None = None  # persisted: every id up to here is done
        self.high = 0  # the newest id published
        self.gaps: list[list] = []  # [first id, last id, monotonic time first missed], ascending
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._lease_due = 0.0
        self._prune_due = 0.0
        self._more = False
        self._stopped = False
        self.failures = 0  # consecutive rounds the channel layer failed

    # -- lifecycle

    async def start(self) -> "Relay":
        """Load the cursor (or, on a shared layer, try for the lease). Once
        this returns, every event committed afterwards will be published."""
        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self.shared:
            await self._db(self._check_lease)
        else:
            self._resume(await self._db(ensure_cursor, self.name))
        return self

    async def run(self) -> None:
        """Publish until stopped: a batch on every wake-up or poll."""
        while not self._stopped:
            try:
                await self.tick()
                if self.leading and time.monotonic() >= self._prune_due:
                    self._prune_due = time.monotonic() + PRUNE_EVERY
                    await self._db(prune)
            except Exception:
                log.exception("outbox relay: a round failed; retrying")
                await asyncio.sleep(max(1.0, self.poll))
                continue
            if self._more:
                continue
            # While the channel layer is down, retry less and less often.
            wait = min(MAX_BACKOFF, self.poll * 2 ** min(self.failures, 10)) if self.failures else self.poll
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                pass
            self._wake.clear()

    async def stop(self) -> None:
        self._stopped = True
        if self._wake is not None:
            self._wake.set()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        if self.shared and self.leading:
            await self._db(release, self.name, self.holder)
            self.leading = False

    def wake(self) -> None:
        """Publish now rather than at the next poll; safe from any thread."""
        loop, event = self.loop, self._wake
        if loop is None or event is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop closed meanwhile
            pass

    # -- one round

    async def tick(self) -> int:
        """Publish the next batch (if this relay publishes); returns how many
        events went out. Sends first, then persists the cursor."""
        self._more = False
        if self.shared and not await self._db(self._check_lease):
            return 0
        after = self.high
        rows = await self._db(fetch, after, [(lo, hi) for lo, hi, _ in self.gaps], self.batch)
        sent = 0
        for event_id, group, message in rows:
            try:
                await asyncio.wait_for(self.layer.group_send(group, message), SEND_TIMEOUT)
            except REFUSED:
                log.warning("outbox relay: the channel layer refused event #%s; skipped", event_id, exc_info=True)
            except Exception:
                if not self.failures:  # once per outage, not every retry
                    log.warning(
                        "outbox relay: the channel layer failed; retrying from event #%s", event_id, exc_info=True
                    )
                self.failures += 1
                break
            else:
                sent += 1
            self._done(event_id)
        else:  # a full batch of new events: there is probably more waiting
            self._more = sum(1 for row in rows if row[0] > after) >= self.batch
            if self.failures and rows:
                log.warning("outbox relay: the channel layer is back after %s failed tries", self.failures)
                self.failures = 0
        self._expire_gaps()
        position = self.gaps[0][0] - 1 if self.gaps else self.high
        if position != self.position:
            if await self._db(save_position, self.name, position, self.holder if self.shared else None):
                self.position = position
            elif self.shared:  # the lease went to another relay meanwhile: stand by
                self.leading, self._lease_due = False, 0.0
        return sent

    # -- bookkeeping (ids above the persisted position)

    def _resume(self, position: int) -> None:
        self.position = self.high = position
        self.gaps = []

    def _done(self, event_id: int) -> None:
        if event_id > self.high:
            # Ids in between are not visible (yet); below the first event a
            # cursor that started on an empty outbox sees, there is nothing
            # to wait for (ids do not restart when rows are deleted).
            if self.high and event_id > self.high + 1:
                self.gaps.append([self.high + 1, event_id - 1, time.monotonic()])
            self.high = event_id
            return
        for i, (lo, hi, seen) in enumerate(self.gaps):  # a late commit filled part of a gap
            if lo <= event_id <= hi:
                parts = ([[lo, event_id - 1, seen]] if lo < event_id else []) + (
                    [[event_id + 1, hi, seen]] if event_id < hi else []
                )
                self.gaps[i : i + 1] = parts
                return

    def _expire_gaps(self) -> None:
        cutoff = time.monotonic() - self.gap_seconds
        self.gaps = [gap for gap in self.gaps if gap[2] >= cutoff][-MAX_GAPS:]

    def _check_lease(self) -> bool:
        """Shared layer: renew the lease well before it runs out; a standby
        looks a few times per lease period. Runs on the relay's thread."""
        now = time.monotonic()
        if now < self._lease_due:
            return self.leading
        leading = acquire(self.name, self.holder, self.lease_seconds)
        if leading and not self.leading:
            self._resume(ensure_cursor(self.name))  # take over where the last leader stopped
        self.leading = leading
        self._lease_due = now + self.lease_seconds / (3 if leading else 5)
        return leading

    async def _db(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(_executor, _closing, fn, args)


# --- One relay per web process ------------------------------------------------------

_relay: Relay | None = None
_starting: tuple[asyncio.AbstractEventLoop, asyncio.Task] | None = None
_retry_at = 0.0


def wake() -> None:
    """After a commit that wrote hints: this process's relay (if it runs
    one) publishes them now instead of at its next poll."""
    relay = _relay
    if relay is not None:
        relay.wake()


def _start_task() -> asyncio.Task | None:
    """The task that starts (or started) this process's relay on the running
    loop; a new one if there is none on this loop or it stopped."""
    global _starting
    loop = asyncio.get_running_loop()
    if _starting is not None and _starting[0] is loop:
        task = _starting[1]
        if not task.done():
            return task
        relay = None if task.cancelled() else task.result()
        if relay is not None and relay.task is not None and not relay.task.done():
            return task
        if relay is None and time.monotonic() < _retry_at:
            return None
    _starting = (loop, loop.create_task(_start()))
    return _starting[1]


async def _start() -> Relay | None:
    global _relay, _retry_at
    layer = get_channel_layer()
    if layer is None:
        return None
    relay = Relay(layer)
    try:
        await relay.start()
    except Exception:
        log.exception("outbox relay could not start; trying again in %.0f s", RETRY_START)
        _retry_at = time.monotonic() + RETRY_START
        return None
    relay.task = asyncio.get_running_loop().create_task(relay.run())
    _relay = relay
    return relay


async def ensure_running() -> Relay | None:
    """Start this process's relay on the running (server) loop unless it
    runs, and wait until it has loaded its cursor: a live page that connects
    after this hears of every change committed after it. ``None`` where no
    channel layer is configured or it cannot start (then it is retried)."""
    task = _start_task()
    return None if task is None else await asyncio.shield(task)


def start_soon() -> None:
    """``ensure_running`` without waiting, for plain requests."""
    _start_task()


class StartRelay:
    """ASGI middleware: the web server's relay starts with its first request
    (or WebSocket), on the server's event loop, whether or not a live page
    is open yet; it also prunes."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            start_soon()
        return await self.app(scope, receive, send)

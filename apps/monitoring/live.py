"""Hints to the monitoring pages that something changed (after commit).
Consumers coalesce them, so a burst of heartbeats costs a browser at most
one update a second."""

import asyncio
import logging
import threading
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from apps.core.events import send_many

log = logging.getLogger(__name__)

OVERVIEW_GROUP = "monitoring"
# Every node page also listens here: telemetry hints name the nodes that
# changed, so ten thousand agents cost one message a second, not one per
# node (see ``telemetry_arrived``).
TELEMETRY_GROUP = "monitoring-telemetry"
# Consumers coalesce too, but a thousand agents would still cost a thousand
# channel-layer sends a second; at most one hint per second per process is
# plenty for pages that redraw at most once a second.
HINT_INTERVAL = 1.0
# Past this many nodes in one hint, it just says "every node" (None).
MAX_NODES_PER_HINT = 5_000


def node_group(node_id: int) -> str:
    return f"node-{node_id}"


def checker_group(checker_id: int) -> str:
    return f"checker-{checker_id}"


class _TelemetryHints:
    """Collects the nodes whose telemetry committed and sends one hint for
    all of them at most every ``HINT_INTERVAL``, on the server's event loop.
    The request thread never waits for the channel layer. Nothing is dropped:
    a node that reported since the last hint is named in the next one."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pending: set[int] = set()
        self.due_at: float | None = None  # when the scheduled hint goes out
        self.last_sent = 0.0

    def add(self, node_id: int) -> None:
        now = time.monotonic()
        with self.lock:
            self.pending.add(node_id)
            # A hint already on its way names this node too (unless its loop
            # stopped before sending it: then schedule another).
            if self.due_at is not None and now < self.due_at + 5 * HINT_INTERVAL:
                return
            delay = max(0.0, self.last_sent + HINT_INTERVAL - now)
            self.due_at = now + delay
        loop = _server_loop()
        try:
            if loop is not None:
                loop.call_soon_threadsafe(loop.call_later, delay, self._flush_on_loop)
                return
        except RuntimeError:  # the loop closed meanwhile
            pass
        # No event loop serves this thread (a management command, a
        # synchronous test client): send now.
        self.flush_now()

    def _take(self) -> list[int] | None:
        with self.lock:
            nodes = sorted(self.pending)
            self.pending.clear()
            self.due_at = None
            self.last_sent = time.monotonic()
        return None if len(nodes) > MAX_NODES_PER_HINT else nodes

    def flush_now(self) -> None:
        nodes = self._take()
        send_many([(OVERVIEW_GROUP, {"type": "monitoring.changed"}),
                   (TELEMETRY_GROUP, {"type": "monitoring.telemetry", "nodes": nodes})])

    def _flush_on_loop(self) -> None:
        task = asyncio.ensure_future(_send_async(self._take()))
        _sending.add(task)  # the loop only keeps a weak reference
        task.add_done_callback(_sending.discard)


_sending: set[asyncio.Task] = set()


async def _send_async(nodes: list[int] | None) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(OVERVIEW_GROUP, {"type": "monitoring.changed"})
        await layer.group_send(TELEMETRY_GROUP, {"type": "monitoring.telemetry", "nodes": nodes})
    except Exception:  # a missed page refresh is harmless; the data is committed
        log.warning("live telemetry hint failed", exc_info=True)


async def _running_loop():
    return asyncio.get_running_loop()


def _server_loop():
    """The event loop serving this request thread, if any (under ASGI the
    coroutine runs on it); ``None`` in purely synchronous code."""
    loop = async_to_sync(_running_loop)()
    return loop if loop.is_running() else None


_telemetry = _TelemetryHints()


def telemetry_arrived(node_id: int) -> None:
    transaction.on_commit(lambda: _telemetry.add(node_id))


def reports_arrived(node_ids, checker_id: int) -> None:
    """After commit: the overview and the checker's page once, each node's
    page once, all in one hop into the channel layer (a checker sends its
    whole epoch in one batch request)."""
    nodes = sorted(set(node_ids))
    if not nodes:
        return
    changed = {"type": "monitoring.changed"}
    messages = [(OVERVIEW_GROUP, changed), (checker_group(checker_id), changed)]
    messages += [(node_group(n), changed) for n in nodes]
    transaction.on_commit(lambda: send_many(messages))


def report_arrived(node_id: int, checker_id: int) -> None:
    reports_arrived([node_id], checker_id)


# Every node and checker page listens here too: recording an epoch's
# consensus changes the nodes' status and consensus rows and the checkers'
# tallies, so one message per epoch tells every open page.
EPOCH_GROUP = "monitoring-epoch"


def consensus_recorded(epoch: int) -> None:
    messages = [(OVERVIEW_GROUP, {"type": "monitoring.changed"}),
                (EPOCH_GROUP, {"type": "monitoring.changed", "epoch": epoch})]
    transaction.on_commit(lambda: send_many(messages))

"""Hints to the monitoring pages that something changed, recorded in the
outbox (``apps/core/outbox.py``) and published by the web server's relay,
whichever process wrote them (agents through the API, the scheduler
recording an epoch's consensus). Consumers coalesce them, so a burst of
heartbeats costs a browser at most one update a second."""

import asyncio
import logging
import threading
import time

from asgiref.sync import async_to_sync
from django.db import connections, transaction

from apps.core import outbox

log = logging.getLogger(__name__)

OVERVIEW_GROUP = "monitoring"
# Every node page also listens here: telemetry hints name the nodes that
# changed, so ten thousand agents cost one message a second, not one per
# node (see ``telemetry_arrived``).
TELEMETRY_GROUP = "monitoring-telemetry"
# At most four telemetry hints a second per process: a thousand agents must
# not cost a thousand outbox rows a second, and a change waits at most this
# long before its pages hear of it (a second was most of the live pages'
# 500 ms budget; see bench/fanout.py).
HINT_INTERVAL = 0.25
# Past this many nodes in one hint, it just says "every node" (None).
MAX_NODES_PER_HINT = 5_000
CHANGED = {"type": "monitoring.changed"}


def node_group(node_id: int) -> str:
    return f"node-{node_id}"


def checker_group(checker_id: int) -> str:
    return f"checker-{checker_id}"


def telemetry_messages(nodes: list[int] | None) -> list[tuple[str, dict]]:
    return [(OVERVIEW_GROUP, CHANGED), (TELEMETRY_GROUP, {"type": "monitoring.telemetry", "nodes": nodes})]


def _write_now(messages) -> None:
    outbox.write(messages)  # autocommit: a transaction of its own


class _TelemetryHints:
    """Collects the nodes whose heartbeats committed in this process and
    writes one outbox row set naming all of them at most every
    ``HINT_INTERVAL``, from a thread of the server's event loop, so the
    request thread never waits for it. Nothing is dropped: a node that
    reported since the last hint is named in the next one.

    Unlike the other hints this one is written just after the heartbeats
    commit rather than inside their transactions: one row a second for
    every agent together instead of one per request (heartbeats are the
    hottest path there is; see ``bench/ingest.py``). A process killed in that
    second costs the node pages one redraw, which the agents' next batch
    brings."""

    def __init__(self, write=_write_now):
        self.write = write
        self.lock = threading.Lock()
        self.pending: set[int] = set()
        self.due_at: float | None = None  # when the scheduled hint is written
        self.last_written = 0.0

    def add(self, node_id: int) -> None:
        now = time.monotonic()
        with self.lock:
            self.pending.add(node_id)
            # A hint already on its way names this node too (unless its loop
            # stopped before writing it: then schedule another).
            if self.due_at is not None and now < self.due_at + 5 * HINT_INTERVAL:
                return
            delay = max(0.0, self.last_written + HINT_INTERVAL - now)
            self.due_at = now + delay
        loop = _server_loop()
        try:
            if loop is not None:
                loop.call_soon_threadsafe(loop.call_later, delay, self._flush_on_loop, loop)
                return
        except RuntimeError:  # the loop closed meanwhile
            pass
        # No event loop serves this thread (a management command, a
        # synchronous test client): write now.
        self.flush()

    def _take(self) -> list[int] | None:
        with self.lock:
            nodes = sorted(self.pending)
            self.pending.clear()
            self.due_at = None
            self.last_written = time.monotonic()
        return None if len(nodes) > MAX_NODES_PER_HINT else nodes

    def flush(self) -> None:
        try:
            self.write(telemetry_messages(self._take()))
        except Exception:  # the heartbeats are committed; a missed page redraw is harmless
            log.warning("live telemetry hint failed", exc_info=True)

    def _flush_in_thread(self) -> None:
        try:
            self.flush()
        finally:
            connections.close_all()

    def _flush_on_loop(self, loop) -> None:
        loop.run_in_executor(None, self._flush_in_thread)


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
    """Record, in the current transaction: the overview and the checker's
    page once, each node's page once (a checker sends its whole epoch in
    one batch request)."""
    nodes = sorted(set(node_ids))
    if not nodes:
        return
    messages = [(OVERVIEW_GROUP, CHANGED), (checker_group(checker_id), CHANGED)]
    outbox.write(messages + [(node_group(n), CHANGED) for n in nodes])


def report_arrived(node_id: int, checker_id: int) -> None:
    reports_arrived([node_id], checker_id)


def node_reported(node_id: int) -> None:
    """One report of a batch, in that report's own transaction: its node's
    page. The batch then calls ``checker_reported`` once for the rest."""
    outbox.write([(node_group(node_id), CHANGED)])


def checker_reported(checker_id: int) -> None:
    """After a batch of reports, each committed on its own with its node's
    hint: the overview and the checker's page once for all of them (one
    transaction of their own; a process killed just before costs these two
    pages one redraw, which the next report or epoch brings)."""
    outbox.write([(OVERVIEW_GROUP, CHANGED), (checker_group(checker_id), CHANGED)])


# Every node and checker page listens here too: recording an epoch's
# consensus changes the nodes' status and consensus rows and the checkers'
# tallies, so one message per epoch tells every open page.
EPOCH_GROUP = "monitoring-epoch"


def consensus_recorded(epoch: int) -> None:
    outbox.write([(OVERVIEW_GROUP, CHANGED), (EPOCH_GROUP, {"type": "monitoring.changed", "epoch": epoch})])

"""Writing live-page hints: rows of the outbox, in the caller's transaction.

A page learns that something changed from a hint on a Channels group. Sent
directly after commit, a hint only reached pages served by the process that
made the change (the in-memory channel layer lives inside one process), and
a process that died between its commit and the send lost it. Written here
instead, the hint is a row in the same transaction as the change: it exists
if and only if the change committed, and the web server's relay
(``apps/platform/relay.py``) publishes it to every page that listens, whichever
process wrote it.

Writers only ever insert; nothing here waits for the channel layer.
"""

import contextvars
import json
from collections.abc import Callable, Iterable
from contextlib import contextmanager

from django.db import transaction
from django.utils import timezone

from .models import OutboxEvent

# Hints written inside ``deferred()``: inserted together when the block ends.
_pending: contextvars.ContextVar[list | None] = contextvars.ContextVar("outbox_pending", default=None)
# Called after a commit that wrote hints. The web server's relay registers
# here (core does not import the layer that publishes).
_after_commit: list[Callable[[], None]] = []


def after_commit(callback: Callable[[], None]) -> None:
    """Call ``callback`` after every commit that wrote hints in this
    process. Registering the same callback again changes nothing."""
    if callback not in _after_commit:
        _after_commit.append(callback)


def write(messages: Iterable[tuple[str, dict]]) -> None:
    """Record ``(group, message)`` hints in the current transaction (or at
    once under autocommit). They are published once it commits, and never if
    it rolls back."""
    messages = list(messages)
    if not messages:
        return
    pending = _pending.get()
    if pending is not None:
        pending.extend(messages)
        return
    _insert(messages)


def _insert(messages: list[tuple[str, dict]]) -> None:
    now = timezone.now()
    OutboxEvent.objects.bulk_create([OutboxEvent(created_at=now, group=g, message=m) for g, m in messages])
    # This process's relay need not wait for its next poll.
    for callback in _after_commit:
        transaction.on_commit(callback)


@contextmanager
def deferred():
    """Collect every hint written inside the block and insert them when it
    ends, once each, in one statement; a block that raises writes nothing.

    For long transactions such as settling an epoch: their hints take their
    ids just before the commit instead of minutes earlier, so the relay,
    which reads in id order, is not left waiting on an old id (see the
    relay's gaps), and repeats of the same hint cost nothing."""
    if _pending.get() is not None:  # already collecting
        yield
        return
    pending: list[tuple[str, dict]] = []
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
    seen, unique = set(), []
    for group, message in pending:
        key = (group, json.dumps(message, sort_keys=True))
        if key not in seen:
            seen.add(key)
            unique.append((group, message))
    if unique:
        _insert(unique)

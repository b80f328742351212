"""Live updates: tell the Channels groups that something changed, after commit.

The broadcast is a hint for pages to refresh, never the data itself, so a
lost message (Redis restarting) costs a page one update, not correctness.
Consumers coalesce bursts (see ``apps.explorer.consumers``).
"""

import contextvars
import logging
from contextlib import contextmanager

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)

LEDGER_GROUP = "ledger"


def account_group(account_id: int) -> str:
    return f"account-{account_id}"


def send(group: str, message: dict) -> None:
    send_many([(group, message)])


def send_many(messages: list[tuple[str, dict]]) -> None:
    """Send ``(group, message)`` pairs in one hop into the channel layer's
    event loop (the hop, not the send, is what costs)."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return

    async def _all():
        for group, message in messages:
            try:
                await layer.group_send(group, message)
            except Exception:  # the ledger has committed; a missed page refresh is harmless
                log.warning("live update to %s failed", group, exc_info=True)

    try:
        async_to_sync(_all)()
    except Exception:
        log.warning("live updates failed", exc_info=True)


# Postings made inside ``batched()``: one hint per account for all of them.
_batch: contextvars.ContextVar[dict | None] = contextvars.ContextVar("ledger_hint_batch", default=None)


def _ledger_messages(height: int, kind: str, account_ids) -> list[tuple[str, dict]]:
    message = {"type": "ledger.changed", "height": height, "kind": kind}
    return [(LEDGER_GROUP, message)] + [(account_group(a), message) for a in sorted(account_ids)]


def ledger_changed(*, height: int, kind: str, account_ids: list[int]) -> None:
    batch = _batch.get()
    if batch is not None:
        batch["height"], batch["kind"] = height, kind
        batch["accounts"].update(account_ids)
        return
    messages = _ledger_messages(height, kind, account_ids)
    transaction.on_commit(lambda: send_many(messages))


@contextmanager
def batched():
    """Collect the hints of every posting made inside the block into one
    (the latest height, each touched account once), sent when the
    surrounding transaction commits. For work that posts thousands of
    transactions at once, such as settling an epoch; a block that raises
    sends nothing."""
    if _batch.get() is not None:  # already collecting
        yield
        return
    batch = {"height": 0, "kind": "", "accounts": set()}
    token = _batch.set(batch)
    try:
        yield
    finally:
        _batch.reset(token)
    if batch["height"]:
        messages = _ledger_messages(batch["height"], batch["kind"], batch["accounts"])
        transaction.on_commit(lambda: send_many(messages))


def reaches_other_processes() -> bool:
    """Whether a hint raised in another process (the scheduler settling an
    epoch, another web worker) reaches this process's pages. The in-memory
    channel layer lives inside one process, so it does not; pages whose data
    such a process writes then refresh those parts on a timer instead."""
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return bool(backend) and not backend.endswith("InMemoryChannelLayer")

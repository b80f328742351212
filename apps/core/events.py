"""Live updates: tell the Channels groups that something changed, after commit.

The broadcast is a hint for pages to refresh, never the data itself, so a
lost message (Redis restarting) costs a page one update, not correctness.
Consumers coalesce bursts (see ``apps.explorer.consumers``).
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)

LEDGER_GROUP = "ledger"


def account_group(account_id: int) -> str:
    return f"account-{account_id}"


def send(group: str, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # the ledger has committed; a missed page refresh is harmless
        log.warning("live update to %s failed", group, exc_info=True)


def ledger_changed(*, height: int, kind: str, account_ids: list[int]) -> None:
    def notify():
        send(LEDGER_GROUP, {"type": "ledger.changed", "height": height, "kind": kind})
        for account_id in account_ids:
            send(account_group(account_id), {"type": "ledger.changed", "height": height, "kind": kind})

    transaction.on_commit(notify)


def reaches_other_processes() -> bool:
    """Whether a hint raised in another process (the scheduler settling an
    epoch, another web worker) reaches this process's pages. The in-memory
    channel layer lives inside one process, so it does not; pages whose data
    such a process writes then refresh those parts on a timer instead."""
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return bool(backend) and not backend.endswith("InMemoryChannelLayer")

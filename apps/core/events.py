"""Live updates for ledger pages: a hint to the ``ledger`` group and to each
touched account's group, recorded in the posting's own transaction (the
outbox, ``outbox.py``) and published by the web server's relay
(``apps/platform/relay.py``), whichever process posted.

The hint is never the data itself: pages re-render from the database, and
consumers coalesce bursts (see ``apps.platform.consumers``).
"""

import contextvars
from contextlib import contextmanager

from . import outbox

LEDGER_GROUP = "ledger"


def account_group(account_id: int) -> str:
    return f"account-{account_id}"


# Postings made inside ``batched()``: one hint per account for all of them.
_batch: contextvars.ContextVar[dict | None] = contextvars.ContextVar("ledger_hint_batch", default=None)


def _ledger_messages(height: int, kind: str, account_ids) -> list[tuple[str, dict]]:
    message = {"type": "ledger.changed", "height": height, "kind": kind}
    return [(LEDGER_GROUP, message)] + [(account_group(a), message) for a in sorted(account_ids)]


def ledger_changed(*, height: int, kind: str, account_ids: list[int]) -> None:
    """Called by ``ledger.post`` inside its transaction."""
    batch = _batch.get()
    if batch is not None:
        batch["height"], batch["kind"] = height, kind
        batch["accounts"].update(account_ids)
        return
    outbox.write(_ledger_messages(height, kind, account_ids))


@contextmanager
def batched():
    """Collect the hints of every posting made inside the block into one
    (the latest height, each touched account once), written when the block
    ends, together with any other live hint written inside it (see
    ``outbox.deferred``). For work that posts thousands of transactions at
    once, such as settling an epoch; a block that raises writes nothing."""
    if _batch.get() is not None:  # already collecting
        yield
        return
    batch = {"height": 0, "kind": "", "accounts": set()}
    with outbox.deferred():
        token = _batch.set(batch)
        try:
            yield
        finally:
            _batch.reset(token)
        if batch["height"]:
            outbox.write(_ledger_messages(batch["height"], batch["kind"], batch["accounts"]))

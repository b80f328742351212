"""Hints to the monitoring pages that something changed (after commit).
Consumers coalesce them, so a burst of heartbeats costs a browser at most
one update a second."""

import time

from django.db import transaction

from apps.core.events import send

OVERVIEW_GROUP = "monitoring"
# Consumers coalesce too, but a thousand agents would still cost a thousand
# channel-layer sends a second; at most one hint per group per second per
# process is plenty for pages that redraw at most once a second.
HINT_INTERVAL = 1.0
_last_hint: dict[str, float] = {}


def _due(group: str) -> bool:
    now = time.monotonic()
    if now - _last_hint.get(group, 0.0) < HINT_INTERVAL:
        return False
    _last_hint[group] = now
    return True


def node_group(node_id: int) -> str:
    return f"node-{node_id}"


def checker_group(checker_id: int) -> str:
    return f"checker-{checker_id}"


def telemetry_arrived(node_id: int) -> None:
    def notify():
        for group in (OVERVIEW_GROUP, node_group(node_id)):
            if _due(group):
                send(group, {"type": "monitoring.changed"})

    transaction.on_commit(notify)


def report_arrived(node_id: int, checker_id: int) -> None:
    def notify():
        send(OVERVIEW_GROUP, {"type": "monitoring.changed"})
        send(node_group(node_id), {"type": "monitoring.changed"})
        send(checker_group(checker_id), {"type": "monitoring.changed"})

    transaction.on_commit(notify)


# Every node and checker page listens here too: recording an epoch's
# consensus changes the nodes' status and consensus rows and the checkers'
# tallies, so one message per epoch tells every open page.
EPOCH_GROUP = "monitoring-epoch"


def consensus_recorded(epoch: int) -> None:
    def notify():
        send(OVERVIEW_GROUP, {"type": "monitoring.changed"})
        send(EPOCH_GROUP, {"type": "monitoring.changed", "epoch": epoch})

    transaction.on_commit(notify)

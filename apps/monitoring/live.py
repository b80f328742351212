"""Hints to the monitoring pages that something changed (after commit).
Consumers coalesce them, so a burst of heartbeats costs a browser at most
one update a second."""

from django.db import transaction

from apps.core.events import send

OVERVIEW_GROUP = "monitoring"


def node_group(node_id: int) -> str:
    return f"node-{node_id}"


def checker_group(checker_id: int) -> str:
    return f"checker-{checker_id}"


def telemetry_arrived(node_id: int) -> None:
    def notify():
        send(OVERVIEW_GROUP, {"type": "monitoring.changed"})
        send(node_group(node_id), {"type": "monitoring.changed"})

    transaction.on_commit(notify)


def report_arrived(node_id: int, checker_id: int) -> None:
    def notify():
        send(OVERVIEW_GROUP, {"type": "monitoring.changed"})
        send(node_group(node_id), {"type": "monitoring.changed"})
        send(checker_group(checker_id), {"type": "monitoring.changed"})

    transaction.on_commit(notify)

"""The live hint that a person's notifications changed (their bell)."""

from apps.core import outbox


def user_group(user_id: int) -> str:
    return f"notifications-{user_id}"


def changed(user_ids) -> None:
    outbox.write([(user_group(u), {"type": "notifications.changed"}) for u in sorted(set(user_ids))])

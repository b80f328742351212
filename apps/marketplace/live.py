"""Hints to a rental's page that its workload changed, recorded in the
outbox (``apps/core/outbox.py``) in the transaction that changed it and
published by the web server's relay."""


def rental_group(rental_id: int) -> str:
    return f"rental-{rental_id}"

"""The long-running scheduler: at each epoch boundary, settle what is due
(consensus, fees, rewards, penalties, unbonding, governance) and prune old
telemetry. Several may run at once: a lease row elects one leader; the
others wait and take over when its lease expires. Settlement is
exactly-once regardless, so the lease only avoids wasted work."""

import logging
import os
import socket
import time
import uuid
from datetime import timedelta

from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from apps.core import epochs, idempotency
from apps.monitoring import retention

from . import services
from .models import SchedulerLease

log = logging.getLogger(__name__)
LEASE = "scheduler"


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def acquire(holder: str, ttl: float) -> bool:
    """Take or renew the lease; True if ``holder`` leads now."""
    now = timezone.now()
    SchedulerLease.objects.get_or_create(name=LEASE)
    # One conditional UPDATE: atomic on SQLite and PostgreSQL alike.
    free_or_mine = Q(holder=holder) | Q(expires_at__lt=now) | Q(expires_at__isnull=True)
    return bool(
        SchedulerLease.objects.filter(free_or_mine, name=LEASE).update(
            holder=holder, expires_at=now + timedelta(seconds=ttl)
        )
    )


def release(holder: str) -> None:
    SchedulerLease.objects.filter(name=LEASE, holder=holder).update(expires_at=timezone.now())


def tick(log_line=print) -> list:
    # The round first: it must never wait for a settlement (docs/rules.md §5).
    services.fix_current_round()
    reports = services.settle_due()
    for r in reports:
        log_line(
            f"settled epoch {r.epoch}: emission {r.emission} uATH, {r.nodes_paid} nodes and "
            f"{r.checkers_paid} checkers paid, {r.breaches} breaches, ledger #{r.ledger_height}"
        )
    if reports:
        pruned = retention.prune()
        pruned["idempotency_keys"] = idempotency.prune()
        if any(pruned.values()):
            log_line(f"pruned {pruned}")
    return reports


def _seconds_to_next_duty() -> float:
    """Until just after the next epoch boundary (fix its round) or the end
    of the current epoch's settlement grace (settle the epoch before),
    whichever comes first."""
    current = epochs.current()
    now = timezone.now()
    grace = timedelta(seconds=services.grace_seconds_default())
    duties = [current.end + timedelta(seconds=0.05)]
    if now < current.start + grace:
        duties.append(current.start + grace + timedelta(seconds=0.5))
    return max(0.05, min((d - now).total_seconds() for d in duties))


def run(stop, log_line=print, poll: float = 1.0):
    """Loop until ``stop()`` is true."""
    holder = holder_id()
    ttl = max(30.0, epochs.length().total_seconds())
    leading = False
    try:
        while not stop():
            close_old_connections()
            try:
                now_leading = acquire(holder, ttl)
                if now_leading != leading:
                    log_line("leading" if now_leading else "standing by: another scheduler leads")
                    leading = now_leading
                if leading:
                    tick(log_line)
            except Exception:
                log.exception("scheduler tick failed; retrying")
            deadline = time.monotonic() + min(_seconds_to_next_duty(), ttl / 3)
            while not stop() and time.monotonic() < deadline:
                time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
    finally:
        release(holder)

"""Bounded storage: raw telemetry is rolled up into ``NodeEpoch`` when an
epoch's consensus is computed, and pruned after a retention window; raw
reports and assignments are kept longer (they are what auditors re-check)
and pruned too.

Nothing of an epoch whose consensus is not computed yet is pruned, however
old: its heartbeats are what the roll-up reads, its reports and assignments
what consensus judges (a scheduler that was down for days settles those
epochs when it is back). Heartbeats, by far the largest table, go epoch by
epoch through the epoch index, each batch one statement; deletes go in
batches so they never hold a long lock."""

from django.conf import settings
from django.db import connections, router
from django.db.models import Min

from apps.core import epochs

from .models import Assignment, AssignmentRound, CheckerReport, EpochConsensus, Heartbeat

BATCH = 5_000
HEARTBEAT_BATCH = 50_000


def _delete_in_batches(qs) -> int:
    total = 0
    while True:
        ids = list(qs.values_list("pk", flat=True)[:BATCH])
        if not ids:
            return total
        total += qs.model.objects.filter(pk__in=ids).delete()[0]


def _epochs_below(model, cut: int):
    """The epochs below ``cut`` that ``model`` holds rows of, ascending, one
    index lookup each."""
    e = model.objects.filter(epoch__lt=cut).aggregate(e=Min("epoch"))["e"]
    while e is not None:
        yield e
        e = model.objects.filter(epoch__gt=e, epoch__lt=cut).aggregate(e=Min("epoch"))["e"]


def _computed(model, cut: int) -> set[int]:
    """The epochs below ``cut`` whose consensus is computed, from the oldest
    ``model`` still holds (consensus marks are kept forever)."""
    low = model.objects.filter(epoch__lt=cut).aggregate(e=Min("epoch"))["e"]
    if low is None:
        return set()
    return set(EpochConsensus.objects.filter(epoch__gte=low, epoch__lt=cut).values_list("epoch", flat=True))


def _prune_heartbeats(cut: int) -> int:
    """Raw telemetry of the epochs below ``cut`` whose consensus (and so
    their roll-up) is computed. Plain SQL: nothing refers to a heartbeat, so
    no cascade needs the rows in Python."""
    computed = _computed(Heartbeat, cut)
    connection = connections[router.db_for_write(Heartbeat)]
    q, meta = connection.ops.quote_name, Heartbeat._meta
    table, pk, epoch = q(meta.db_table), q(meta.pk.column), q(meta.get_field("epoch").column)
    if connection.vendor == "postgresql":
        # Row locks only: one statement per epoch blocks no writer, and ran
        # eight times faster than batches of ids (bench/telemetry.py).
        delete, batch = f"DELETE FROM {table} WHERE {epoch} = %s", None
    else:
        # One writer at a time: batches keep each write lock short.
        delete = f"DELETE FROM {table} WHERE {pk} IN (SELECT {pk} FROM {table} WHERE {epoch} = %s LIMIT %s)"
        batch = HEARTBEAT_BATCH
    total = 0
    for e in list(_epochs_below(Heartbeat, cut)):
        if e not in computed:
            continue
        while True:
            with connection.cursor() as cursor:
                cursor.execute(delete, [e] if batch is None else [e, batch])
                total += cursor.rowcount
                if batch is None or cursor.rowcount < batch:
                    break
    return total


def _prune_audited(model, cut: int) -> int:
    """``model``'s rows of the epochs below ``cut`` whose consensus is
    computed, epoch by epoch (through the ORM: reports have dependents)."""
    computed = _computed(model, cut)
    total = 0
    for e in list(_epochs_below(model, cut)):
        if e in computed:
            total += _delete_in_batches(model.objects.filter(epoch=e))
    return total


def prune(current_epoch: int | None = None) -> dict:
    current = epochs.current_number() if current_epoch is None else current_epoch
    raw_cut = current - settings.TELEMETRY_RETENTION_EPOCHS
    audit_cut = current - settings.REPORT_RETENTION_EPOCHS
    if audit_cut <= 0:
        audited = {"reports": 0, "assignments": 0, "assignment_rounds": 0}
    else:
        audited = {
            "reports": _prune_audited(CheckerReport, audit_cut),
            "assignments": _prune_audited(Assignment, audit_cut),
            "assignment_rounds": AssignmentRound.objects.filter(
                epoch__lt=audit_cut, epoch__in=_computed(AssignmentRound, audit_cut)
            ).delete()[0],
        }
    return {"heartbeats": _prune_heartbeats(raw_cut) if raw_cut > 0 else 0, **audited}

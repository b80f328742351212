"""Bounded storage: raw telemetry is rolled up into ``NodeEpoch`` when an
epoch's consensus is computed, and pruned after a retention window; raw
reports and assignments are kept longer (they are what auditors re-check)
and pruned too.

Nothing of an epoch whose consensus is not computed yet is pruned, however
old: its heartbeats are what the roll-up reads, its reports and assignments
what consensus judges (a scheduler that was down for days settles those
epochs when it is back). Heartbeats, by far the largest table, go epoch by
epoch through the epoch index, each batch one statement; deletes go in
batches so they never hold a long lock.

On PostgreSQL the heartbeat table is partitioned by span of epochs
(``partitions``): a span is dropped whole once all of it is past the
window and every epoch it holds is settled, a drop rather than a delete,
so raw telemetry stays up to ``HEARTBEAT_PARTITION_EPOCHS`` - 1 epochs
longer than the window. What is left below the window (the DEFAULT
partition's samples, a past span's settled epochs while one of its epochs
is not) is deleted epoch by epoch as elsewhere."""

from django.conf import settings
from django.db import connections, router
from django.db.models import Min

from apps.core import epochs

from . import partitions
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


def _epochs_below(model, cut: int, low: int | None = None):
    """The epochs below ``cut`` (and from ``low``) that ``model`` holds rows
    of, ascending, one index lookup each."""
    rows = model.objects.filter(epoch__lt=cut)
    if low is not None:
        rows = rows.filter(epoch__gte=low)
    e = rows.aggregate(e=Min("epoch"))["e"]
    while e is not None:
        yield e
        e = rows.filter(epoch__gt=e).aggregate(e=Min("epoch"))["e"]


def _computed(model, cut: int) -> set[int]:
    """The epochs below ``cut`` whose consensus is computed, from the oldest
    ``model`` still holds (consensus marks are kept forever)."""
    low = model.objects.filter(epoch__lt=cut).aggregate(e=Min("epoch"))["e"]
    if low is None:
        return set()
    return set(EpochConsensus.objects.filter(epoch__gte=low, epoch__lt=cut).values_list("epoch", flat=True))


def _drop_heartbeat_partitions(cut: int, connection) -> tuple[int, list[tuple[int, int]]]:
    """Drop each heartbeat partition wholly below ``cut`` whose epochs are
    all settled; returns how many were dropped and the spans kept that
    reach ``cut`` or beyond (their epochs wait to go with the span)."""
    dropped, waiting = 0, []
    for part, lo, hi in partitions.partitions(connection):
        if hi > cut:
            waiting.append((lo, hi))
            continue
        held = list(_epochs_below(Heartbeat, hi, lo))
        settled = set(EpochConsensus.objects.filter(epoch__in=held).values_list("epoch", flat=True))
        if len(settled) == len(held) and partitions.drop(part, lo, hi, connection):
            dropped += 1
    return dropped, waiting


def _prune_heartbeats(cut: int) -> tuple[int, int]:
    """Raw telemetry of the epochs below ``cut`` whose consensus (and so
    their roll-up) is computed: how many samples were deleted and how many
    partitions dropped. Plain SQL: nothing refers to a heartbeat, so no
    cascade needs the rows in Python."""
    connection = connections[router.db_for_write(Heartbeat)]
    dropped, waiting = 0, []
    if partitions.enabled(connection):
        dropped, waiting = _drop_heartbeat_partitions(cut, connection)
    computed = _computed(Heartbeat, cut)
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
        if e not in computed or any(lo <= e < hi for lo, hi in waiting):
            continue
        while True:
            with connection.cursor() as cursor:
                cursor.execute(delete, [e] if batch is None else [e, batch])
                total += cursor.rowcount
                if batch is None or cursor.rowcount < batch:
                    break
    return total, dropped


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
    heartbeats, dropped = _prune_heartbeats(raw_cut) if raw_cut > 0 else (0, 0)
    # Samples deleted, and heartbeat partitions dropped whole (PostgreSQL;
    # not counted in samples: counting them would cost what the drop saves).
    return {"heartbeats": heartbeats, "heartbeat_partitions": dropped, **audited}

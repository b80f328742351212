"""Bounded storage: raw telemetry is rolled up into ``NodeEpoch`` when an
epoch's consensus is computed, and pruned after a retention window; raw
reports and assignments are kept longer (they are what auditors re-check)
and pruned too. Deletes go in batches so they never hold a long lock."""

from django.conf import settings

from apps.core import epochs

from .models import Assignment, AssignmentRound, CheckerReport, Heartbeat

BATCH = 5_000


def _delete_in_batches(qs) -> int:
    total = 0
    while True:
        ids = list(qs.values_list("pk", flat=True)[:BATCH])
        if not ids:
            return total
        total += qs.model.objects.filter(pk__in=ids).delete()[0]


def prune(current_epoch: int | None = None) -> dict:
    current = epochs.current_number() if current_epoch is None else current_epoch
    raw_cut = current - settings.TELEMETRY_RETENTION_EPOCHS
    audit_cut = current - settings.REPORT_RETENTION_EPOCHS
    return {
        "heartbeats": _delete_in_batches(Heartbeat.objects.filter(epoch__lt=raw_cut)) if raw_cut > 0 else 0,
        "reports": _delete_in_batches(CheckerReport.objects.filter(epoch__lt=audit_cut)) if audit_cut > 0 else 0,
        "assignments": _delete_in_batches(Assignment.objects.filter(epoch__lt=audit_cut)) if audit_cut > 0 else 0,
        "assignment_rounds": AssignmentRound.objects.filter(epoch__lt=audit_cut).delete()[0] if audit_cut > 0 else 0,
    }

"""Settling an epoch: the steps of docs/rules.md §7, all-or-nothing.

``settle(epoch)`` runs every step inside one database transaction that
starts by inserting the epoch's ``EpochSettlement`` row. Its unique epoch
makes the whole thing exactly-once: a second run (or a second settler on
another machine, blocked on that insert until the first commits) finds the
row and pays nothing; a process killed half-way leaves no row and no
postings, and the next run settles the epoch from scratch.
"""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core import checkpoints, epochs, events, ledger, parameters
from apps.core.models import CHECKED_STATUSES, ChainHead
from apps.governance import services as governance

# Settlement drives the epoch and calls marketplace's billing; never the other way for writes.
from apps.marketplace.services import settle_rentals
from apps.monitoring import assignment, consensus, partitions
from apps.monitoring.models import NodeEpoch
from apps.staking import services as staking

from . import emission, penalties
from .models import EpochSettlement, LineKind, SettlementLine
from .rental_lines import rental_lines

log = logging.getLogger(__name__)

# Reports may arrive a moment after an epoch ends; settle after this grace
# (a sixth of an epoch, at least 5 s: 10 s for the demo's one-minute epochs).
MIN_GRACE_SECONDS = 5


def grace_seconds_default() -> float:
    return max(MIN_GRACE_SECONDS, epochs.length().total_seconds() / 6)


STEPS = ("consensus", "rentals", "sla", "emission", "checkers", "unbonding", "compound", "governance")


class AlreadySettled(Exception):
    pass


def settle(epoch: int, progress: Callable[[str], None] | None = None) -> EpochSettlement:
    """Settle ``epoch`` once; raises :class:`AlreadySettled` if it was.

    ``progress`` is called with each step's name (``STEPS``, in order) as
    the step begins, inside the epoch's transaction: a progress bar, or a
    fault drill that holds the settler there to kill it half-way."""
    p = parameters.current(epoch)
    lines: list[SettlementLine] = []
    step = progress or (lambda name: None)
    try:
        with transaction.atomic(), events.batched():
            # The chain head first, as every posting takes it: settlement
            # locks nodes and rentals before it posts, and a rental holding
            # the head while it waits for one of those nodes would deadlock.
            ledger.lock_head()
            report = EpochSettlement.objects.create(epoch=epoch)

            step("consensus")
            consensus.finalize(epoch)  # no-op if the scheduler already closed the epoch
            valid = NodeEpoch.objects.filter(epoch=epoch, valid=True)
            report.nodes_valid = valid.count()

            # Whether this epoch's faults were the network's (decided from
            # the consensus alone, before anyone is paid or penalised).
            assessment = penalties.assess(epoch, p)
            penalties.record_incident(assessment, lines)

            step("rentals")
            before_rentals = ChainHead.objects.get(pk=1).height
            _settle_rentals(epoch, report, penalise=not assessment.incident)
            lines += rental_lines(epoch, p, since_height=before_rentals)

            step("sla")
            report.collateral_slashed += penalties.slash_false_specs(epoch, p, lines)
            # Only nodes this epoch's consensus judged while they were in a
            # checked status: a node suspended by an earlier settlement (still
            # in the round fixed before it) is not breached again.
            breaches = list(
                valid.filter(
                    status_before__in=CHECKED_STATUSES, status_after__in=["degraded", "suspended"]
                ).select_related("node")
            )
            report.breaches = len(breaches)
            for b in breaches:
                lines.append(
                    SettlementLine(
                        epoch=epoch,
                        kind=LineKind.SLA_BREACH,
                        node=b.node,
                        amount=0,
                        reason=f"{b.node.name}: uptime {emission.percent(b.uptime_ppm or 0)}, "
                        f"latency {b.latency_ms if b.latency_ms is not None else '—'} ms -> {b.status_after}",
                        details={"uptime_ppm": b.uptime_ppm, "latency_ms": b.latency_ms, "status": b.status_after},
                    )
                )

            step("emission")
            budget = emission.emission_budget(p)
            reserve = budget["reserve"]
            paid, dust, report.nodes_paid = emission.pay_providers(epoch, budget["provider"], reserve, lines)
            report.provider_emission, report.emission_dust = paid, dust
            reserve.refresh_from_db()
            paid, dust, report.checkers_paid = emission.pay_checkers(epoch, budget["checker"], reserve, lines)
            report.checker_emission = paid
            report.emission_dust += dust
            reserve.refresh_from_db()
            report.community_emission = emission.pay_community(epoch, budget["community"], reserve, lines)
            report.emission = (
                report.provider_emission + report.emission_dust + report.checker_emission + report.community_emission
            )

            step("checkers")
            report.stake_slashed, report.jailed = penalties.checker_penalties(epoch, p, lines, assessment)
            report.incident = assessment.incident

            step("unbonding")
            _, report.unbonded = staking.mature_unbonding(epoch + 1)

            step("compound")
            # Delegators who chose auto-compound: this epoch's rewards go back into their stake.
            staking.compound(epoch + 1)

            step("governance")
            report.proposals_tallied = len(governance.tally_due() or [])

            SettlementLine.objects.bulk_create(lines, batch_size=1000)
            report.ledger_height = ChainHead.objects.get(pk=1).height
            report.save()
            # Signed in the same transaction: an epoch is settled and its
            # checkpoint published together, or neither.
            checkpoints.sign_epoch(epoch)
            return report
    except IntegrityError:
        if EpochSettlement.objects.filter(epoch=epoch).exists():
            raise AlreadySettled(f"Epoch {epoch} is already settled.") from None
        raise


def _settle_rentals(epoch: int, report: EpochSettlement, *, penalise: bool) -> None:
    totals = settle_rentals(epoch, penalise=penalise)
    for field in ("rental_fees", "protocol_fees", "refunds", "sla_credits", "collateral_slashed"):
        setattr(report, field, getattr(report, field) + int(totals.get(field, 0)))


def due_epochs(now=None, grace_seconds: float | None = None) -> list[int]:
    """Finished epochs, past their grace, not settled yet, oldest first."""
    now = now or timezone.now()
    grace = grace_seconds_default() if grace_seconds is None else grace_seconds
    try:
        last_finished = epochs.number_at(now - timedelta(seconds=grace)) - 1
    except LookupError:
        return []
    if last_finished < 0:
        return []
    done = EpochSettlement.objects.order_by("-epoch").values_list("epoch", flat=True).first()
    start = 0 if done is None else done + 1
    settled = set(EpochSettlement.objects.filter(epoch__gte=start).values_list("epoch", flat=True))
    return [e for e in range(start, last_finished + 1) if e not in settled]


def fix_current_round() -> int:
    """Fix the current epoch's assignment round if nobody has yet, then
    make sure the heartbeat table has its partitions for the current span
    of epochs and the next (PostgreSQL; see monitoring.partitions)."""
    if epochs.genesis_time() is None:
        return 0
    rows = assignment.fix_round(epochs.current_number())
    partitions.ensure_current()
    return rows


def settle_due(progress=None, limit: int | None = None) -> list[EpochSettlement]:
    """Settle every due epoch, oldest first; the current round is fixed
    first, so jailing and suspension decided here wait for the next one."""
    fix_current_round()
    reports = []
    for e in due_epochs()[:limit]:
        try:
            reports.append(settle(e, progress))
        except AlreadySettled:
            continue
    return reports

"""Settling an epoch's rentals (docs/rules.md §4, §7 step 2).

For every rental billed in the epoch, by the node's checker consensus for
that epoch (``NodeEpoch``):

* served: the epoch's fee leaves the renter's escrow; ``protocol_fee`` of
  it (rounded down) goes to the community pool, the rest to the provider.
  Provider share + fee == charge, always.
* failed (valid consensus below the SLA: uptime under the target, latency
  over the maximum or unknown, a false spec, or the rental's workload found
  running and answering in fewer probes than the uptime target; or no
  consensus because the node is suspended or offline): the fee goes back to the renter in full
  (no protocol fee on refunds), plus an SLA credit of ``sla_credit`` x the
  fee from the provider's collateral. The first failed epoch of an
  incident (the node did not fail the epoch before) also slashes
  ``downtime_slash`` x the node's required collateral to the community
  pool. A node left below its required collateral is paused. The renter is
  moved to a replacement from the scheduler if they opted in; otherwise
  the rental page offers one.
* no valid consensus on a node in good standing: charged as served (no
  penalty without proof, as for rewards in section 5), marked unverified.

A workload that never answered on the node is refunded to the renter but
costs the provider nothing (no credit, slash or move): from outside, a
container listening on none of its ports looks like broken networking.
Once it has answered in an earlier epoch, its failure is the node's.

A workload that did not answer is not the node's failure when the renter's
own container ended the rental (it exited by itself, or its image could
not be pulled): the epoch in which that happened is judged on the node
alone, and no credit is taken; the rental's unserved epochs were refunded
when it ended (``workloads.record_status``), so nothing is refunded twice.

When a rental's last billed epoch settles, whatever escrow remains (an
on-demand remainder below one epoch's price) is refunded and the rental
ends. A marker row per epoch makes a second call return the first call's
totals without paying twice. Everything runs in a savepoint inside the
caller's transaction (the settlement command's), never committing on its own.
"""

import logging
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.services import open_wallet
from apps.core import bulk, epochs, ledger, parameters
from apps.core.models import Account, Bucket, GpuNode, ModuleAccount, NodeStatus, TxKind
from apps.monitoring.models import NodeEpoch

from . import matching, pauses, workloads
from . import rentals as rental_services
from .models import (
    ChargeOutcome,
    CollateralSlash,
    Rental,
    RentalCharge,
    RentalMode,
    RentalSettlement,
    RentalStatus,
    SlashKind,
    Workload,
    WorkloadState,
)

PPM = 1_000_000
WORKLOAD_FAILED = "the workload did not answer"
log = logging.getLogger(__name__)
User = get_user_model()


class Judgement(NamedTuple):
    outcome: str
    reason: str
    # Failed on the workload alone: the node itself served the epoch.
    workload_only: bool = False


def judge(node: GpuNode, ne: NodeEpoch | None, p: dict, renters_end: str = "") -> Judgement:
    """The outcome of one node-epoch for its renter, and why. ``renters_end``
    says why the renter's own container ended the rental in this epoch (see
    the module): its workload's probes are then not held against the node."""
    outcome, reason = _judge(node, ne, p, renters_end)
    workload_only = outcome == ChargeOutcome.FAILED and reason.startswith(WORKLOAD_FAILED)
    return Judgement(outcome, reason, workload_only)


def _judge(node: GpuNode, ne: NodeEpoch | None, p: dict, renters_end: str) -> tuple[str, str]:
    if ne is None or not ne.valid:
        if node.status in (NodeStatus.SUSPENDED, NodeStatus.OFFLINE):
            return ChargeOutcome.FAILED, f"node {node.get_status_display().lower()}, not serving"
        return ChargeOutcome.UNVERIFIED, "no valid checker consensus: charged as served"
    if ne.spec_ok is False:
        return ChargeOutcome.FAILED, "checkers found the declared GPU spec false"
    if ne.uptime_ppm is not None and ne.uptime_ppm < p["sla_uptime_target"]:
        return ChargeOutcome.FAILED, (
            f"uptime {_pct(ne.uptime_ppm)} below the SLA target {_pct(p['sla_uptime_target'])}"
        )
    if ne.latency_ms is None:
        return ChargeOutcome.FAILED, "no probe answered: node unreachable"
    if ne.latency_ms > p["sla_max_latency_ms"]:
        return ChargeOutcome.FAILED, f"latency {ne.latency_ms} ms above the SLA maximum {p['sla_max_latency_ms']} ms"
    served = f"uptime {_pct(ne.uptime_ppm)}, latency {ne.latency_ms} ms"
    if ne.workload_ppm is not None and ne.workload_ppm < p["sla_uptime_target"]:
        if renters_end:
            return ChargeOutcome.SERVED, f"{served}; {renters_end}: not the node's failure"
        return ChargeOutcome.FAILED, (
            f"{WORKLOAD_FAILED}: running and reachable in {_pct(ne.workload_ppm)} of probes,"
            f" SLA target {_pct(p['sla_uptime_target'])}"
        )
    if ne.workload_ppm is not None:
        served += f", workload answered in {_pct(ne.workload_ppm)} of probes"
    return ChargeOutcome.SERVED, served


def renters_end(rental: Rental, workload: Workload | None, epoch: int) -> str:
    """Why the renter's own container ended ``rental`` in ``epoch`` (its last
    billed one), or "" (see the module)."""
    if workload is None or rental.status != RentalStatus.ENDED or epoch != rental.end_epoch - 1:
        return ""
    workload.rental = rental
    if not workloads.renters_own_end(workload):
        return ""
    if workload.state == WorkloadState.EXITED:
        return f"your container exited by itself (code {workload.exit_code})"
    return "the node could not pull your image"


def _pct(ppm: int) -> str:
    whole, frac = divmod(ppm * 100, PPM)
    frac_text = f"{frac:06d}".rstrip("0")[:2]
    return f"{whole}{'.' + frac_text if frac_text else ''}%"


def has_evidence(node: GpuNode, ne: NodeEpoch | None) -> bool:
    """Whether a failed epoch is proven against the provider (docs/rules.md
    §7): a valid consensus that the node failed, or the provider's own
    declaration (it took the node offline). Without either the renter is
    refunded, but no SLA credit or downtime slash is taken."""
    return (ne is not None and ne.valid) or node.status == NodeStatus.OFFLINE


def settle_rentals(epoch: int, *, penalise: bool = True) -> dict:
    """Settle every rental billed in ``epoch``; returns the epoch's totals
    (micro-ATH): rental_fees, protocol_fees, refunds, sla_credits,
    collateral_slashed, plus counts of rentals and replacements."""
    done = RentalSettlement.objects.filter(epoch=epoch).first()
    if done is not None:
        return done.totals()
    with transaction.atomic():
        try:
            with transaction.atomic():
                marker = RentalSettlement.objects.create(epoch=epoch)
        except IntegrityError:  # settled concurrently
            return RentalSettlement.objects.get(epoch=epoch).totals()
        _settle(epoch, marker, penalise=penalise)
        marker.save()
        return marker.totals()


def _settle(epoch: int, marker: RentalSettlement, *, penalise: bool) -> None:
    p = parameters.current(epoch)
    due = list(
        Rental.objects.filter(start_epoch__lte=epoch, end_epoch__gt=epoch, settled_through__lt=epoch)
        .order_by("node_id", "pk")
        .values_list("pk", "node_id")
    )
    if not due:
        return
    node_ids = sorted({n for _, n in due})
    # Nodes first, in id order, the same order rent() and consensus lock them.
    nodes = {n.pk: n for n in GpuNode.objects.select_for_update().filter(pk__in=node_ids).order_by("pk")}
    rentals = list(Rental.objects.select_for_update().filter(pk__in=[r for r, _ in due]).order_by("node_id", "pk"))
    verdicts = {ne.node_id: ne for ne in NodeEpoch.objects.filter(epoch=epoch, node_id__in=node_ids)}
    leases = {w.rental_id: w for w in Workload.objects.filter(rental_id__in=[r.pk for r in rentals])}
    # Rentals whose workload checkers found answering in an earlier epoch
    # (of this rental, or of the one it replaced: it ran there, so it can run).
    answered_before = _answered_before(rentals, p["sla_uptime_target"])
    failed_before = set(
        RentalCharge.objects.filter(epoch=epoch - 1, node_id__in=node_ids, outcome=ChargeOutcome.FAILED).values_list(
            "node_id", flat=True
        )
    )
    pool = ledger.module_account(ModuleAccount.COMMUNITY_POOL)
    people = {r.renter_id for r in rentals} | {n.provider_id for n in nodes.values()}
    wallets = dict(Account.objects.filter(owner_id__in=people).values_list("owner_id", "pk"))

    def wallet_of(user_id: int) -> int:
        if user_id not in wallets:
            wallets[user_id] = open_wallet(User.objects.get(pk=user_id)).pk
        return wallets[user_id]

    slashed_now: set[int] = set()
    dirty_nodes: set[int] = set()
    # Served epochs are paid together in one posting after the loop (legs
    # summed per account and bucket); a failed epoch is posted on its own
    # at once, as it may slash, pause or move the rental.
    served_legs: dict[tuple[int, str], int] = {}
    served: list[tuple[Rental, RentalCharge]] = []
    charges: list[RentalCharge] = []
    for rental in rentals:
        node = nodes[rental.node_id]
        provider_wallet = wallet_of(node.provider_id)
        renter_wallet = wallet_of(rental.renter_id)
        outcome, reason, workload_only = judge(
            node, verdicts.get(node.pk), p, renters_end(rental, leases.get(rental.pk), epoch)
        )
        ne = verdicts.get(node.pk)
        charge = RentalCharge(
            rental=rental,
            epoch=epoch,
            node=node,
            provider_id=node.provider_id,
            outcome=outcome,
            charge=rental.price_per_epoch,
            reason=reason,
            uptime_ppm=ne.uptime_ppm if ne else None,
            latency_ms=ne.latency_ms if ne else None,
            workload_ppm=ne.workload_ppm if ne else None,
        )
        charges.append(charge)
        marker.rentals += 1
        if outcome != ChargeOutcome.FAILED:
            fee = charge.charge * p["protocol_fee"] // PPM
            charge.fee, charge.provider_amount = fee, charge.charge - fee
            for account_id, bucket, amount in (
                (renter_wallet, Bucket.ESCROWED, -charge.charge),
                (provider_wallet, Bucket.AVAILABLE, charge.provider_amount),
                (pool.pk, Bucket.AVAILABLE, fee),
            ):
                served_legs[(account_id, bucket)] = served_legs.get((account_id, bucket), 0) + amount
            rental.released += charge.charge
            marker.rental_fees += charge.charge
            marker.protocol_fees += fee
            rental.settled_through = epoch
            if epoch == rental.end_epoch - 1:
                _finish(rental, renter_wallet, epoch, marker)
            served.append((rental, charge))
            continue
        new_incident = node.pk not in failed_before and node.pk not in slashed_now
        slashed_now.add(node.pk)
        # No SLA credit or slash without evidence, nor in a network incident
        # (docs/rules.md §5 and §7): the renter is refunded either way.
        penalty = penalise and has_evidence(node, ne)
        # A workload that never answered on this node may be the renter's
        # own doing (a container that listens on none of the ports it
        # declared looks exactly like a broken node from outside): refunded,
        # but the provider pays a credit, a slash and a failover only once
        # the workload was seen answering here and then stopped.
        unproven = workload_only and rental.pk not in answered_before
        if not penalty:
            charge.reason += (
                "; network incident: no SLA credit"
                if not penalise
                else "; no evidence against the provider: no SLA credit"
            )
        elif unproven:
            penalty = False
            charge.reason += "; it never answered on this node, which can be the container's own doing: no SLA credit"
        if _refund_failed(
            epoch,
            p,
            rental,
            node,
            charge,
            renter_wallet,
            provider_wallet,
            pool,
            marker,
            new_incident=new_incident,
            penalty=penalty,
        ):
            dirty_nodes.add(node.pk)
        rental.settled_through = epoch
        fields = ["released", "refunded", "settled_through", "last_failure_epoch"]
        if epoch == rental.end_epoch - 1:
            _finish(rental, renter_wallet, epoch, marker)
            fields += ["refunded", "status", "end_reason", "ended_at"]
        rental.save(update_fields=fields)
        if unproven:
            pass  # moving a container that does not listen would fail the same way elsewhere
        elif rental.auto_replace and rental.status == RentalStatus.ACTIVE and rental.end_epoch > epoch + 1:
            if _auto_replace(rental, node, epoch):
                marker.replacements += 1
    if served:
        legs = [ledger.Leg(a, b, amount) for (a, b), amount in sorted(served_legs.items()) if amount]
        tx = ledger.post(
            TxKind.RENTAL_SETTLE,
            legs,
            memo=f"Epoch {epoch}: {len(served)} rental epochs served",
            # Each rental's charge row names this transaction (tx_height).
            meta={"epoch": epoch, "rentals": len(served), "fees": sum(c.fee for _, c in served)},
        )
        for _, charge in served:
            charge.tx_height = tx.height
        bulk.update_fields(
            [r for r, _ in served], ["released", "refunded", "settled_through", "status", "end_reason", "ended_at"]
        )
    RentalCharge.objects.bulk_create(charges, batch_size=1000)
    for node in nodes.values():
        if node.pk in dirty_nodes:
            pauses.refresh([node], {node.pk: node.paused}, f"collateral taken in epoch {epoch} settlement", epoch=epoch)
            node.save(update_fields=["collateral", "paused"])


def _answered_before(rentals: list[Rental], target: int) -> set[int]:
    ids = {r.pk: r.pk for r in rentals} | {r.replaces_id: r.pk for r in rentals if r.replaces_id}
    answered = RentalCharge.objects.filter(rental_id__in=list(ids), workload_ppm__gte=target).values_list(
        "rental_id", flat=True
    )
    return {ids[r] for r in answered}


def _refund_failed(
    epoch: int,
    p: dict,
    rental: Rental,
    node: GpuNode,
    charge: RentalCharge,
    renter_wallet: int,
    provider_wallet: int,
    pool,
    marker: RentalSettlement,
    *,
    new_incident: bool,
    penalty: bool,
) -> bool:
    """A failed epoch: the fee back to the renter plus, when ``penalty``
    (proven, and no network incident), the SLA credit from the provider's
    collateral and on a new incident the downtime slash. Returns whether the
    node's collateral changed."""
    reason, changed = charge.reason, False
    credit = min(node.collateral, charge.charge * p["sla_credit"] // PPM) if penalty else 0
    charge.refunded, charge.sla_credit = charge.charge, credit
    legs = [
        ledger.Leg(renter_wallet, Bucket.ESCROWED, -charge.charge),
        ledger.Leg(renter_wallet, Bucket.AVAILABLE, charge.charge + credit),
    ]
    if credit:
        legs.append(ledger.Leg(provider_wallet, Bucket.COLLATERAL, -credit))
    tx = ledger.post(
        TxKind.RENTAL_REFUND,
        legs,
        memo=f"Epoch {epoch}: {node.name} failed ({reason}); fee refunded" + (" + SLA credit" if credit else ""),
        meta={"epoch": epoch, "rental": rental.pk, "node": node.pk, "sla_credit": credit},
    )
    charge.tx_height = tx.height
    rental.refunded += charge.charge
    rental.last_failure_epoch = epoch
    marker.refunds += charge.charge
    marker.sla_credits += credit
    if credit:
        why = f"SLA credit to the renter of rental #{rental.pk}: {reason}"
        _take_collateral(node, rental, epoch, SlashKind.SLA_CREDIT, credit, tx, why)
        changed = True
    amount = (
        min(node.collateral, node.required_collateral * p["downtime_slash"] // PPM) if new_incident and penalty else 0
    )
    if amount:
        tx = ledger.post(
            TxKind.SLASH,
            [ledger.Leg(provider_wallet, Bucket.COLLATERAL, -amount), ledger.Leg(pool, Bucket.AVAILABLE, amount)],
            memo=f"Epoch {epoch}: downtime slash of {node.name} while serving rental #{rental.pk}",
            meta={"epoch": epoch, "node": node.pk, "rental": rental.pk, "reason": reason},
        )
        why = f"Downtime while serving rental #{rental.pk}: {reason} (new incident)"
        _take_collateral(node, rental, epoch, SlashKind.DOWNTIME, amount, tx, why)
        changed = True
        marker.collateral_slashed += amount
    return changed


def _take_collateral(node: GpuNode, rental: Rental, epoch: int, kind: str, amount: int, tx, reason: str) -> None:
    """Take ``amount`` off the node's collateral (in memory: the caller saves
    the node) and record it as a slash of ``kind``, posted as ``tx``."""
    node.collateral -= amount
    CollateralSlash.objects.create(
        node=node,
        provider_id=node.provider_id,
        epoch=epoch,
        kind=kind,
        amount=amount,
        reason=reason,
        rental=rental,
        tx_height=tx.height,
    )


def _finish(rental: Rental, renter_wallet: int, epoch: int, marker: RentalSettlement) -> None:
    left = rental.escrow_left
    if left > 0:
        ledger.post(
            TxKind.RENTAL_REFUND,
            [ledger.Leg(renter_wallet, Bucket.ESCROWED, -left), ledger.Leg(renter_wallet, Bucket.AVAILABLE, left)],
            memo=f"Rental #{rental.pk} finished: escrow remainder returned",
            meta={"rental": rental.pk, "epoch": epoch},
        )
        rental.refunded += left
        marker.refunds += left
    if rental.status == RentalStatus.ACTIVE:
        rental.status = RentalStatus.ENDED
        rental.end_reason = (
            "Reserved time is over" if rental.mode == RentalMode.RESERVED else "Escrow used up"
        ) + f" after epoch {epoch}"
        rental.ended_at = timezone.now()


def replacement_requirements(rental: Rental, node: GpuNode) -> matching.Requirements:
    """What a replacement must offer: the same GPUs or better VRAM, at least
    as many, no dearer than the locked price (so the escrow covers it),
    near the renter, ranked for experience."""
    return matching.Requirements(
        min_vram_gb=node.gpu_model.vram_gb,
        gpu_count=rental.gpu_count,
        region=rental.renter_region or node.region,
        preference=matching.Preference.EXPERIENCE,
        renter=rental.renter,
        exclude_node_ids=(node.pk,),
        max_cost_per_hour=rental.price_per_gpu_hour * rental.gpu_count,
    )


def _auto_replace(rental: Rental, node: GpuNode, epoch: int) -> Rental | None:
    found = matching.match(replacement_requirements(rental, node), limit=3)
    start = max(epoch, epochs.current_number()) + 1
    for candidate in found["candidates"]:
        try:
            with transaction.atomic():
                return rental_services.move_to(
                    rental,
                    candidate.node.pk,
                    old_end=epoch + 1,
                    start=start,
                    reason=f"{node.name} failed in epoch {epoch}; moved automatically to {candidate.node.name}",
                )
        except rental_services.RentalError as exc:
            log.info("replacement %s for rental %s refused: %s", candidate.node.pk, rental.pk, exc)
            rental.refresh_from_db()
    return None


def settled_summary(rental: Rental) -> dict:
    """Served / refunded / credits of a rental, from its charges."""
    from django.db.models import Count, Q, Sum

    agg = rental.charges.aggregate(
        served=Sum("charge", filter=~Q(outcome=ChargeOutcome.FAILED)),
        fees=Sum("fee"),
        to_provider=Sum("provider_amount"),
        refunded=Sum("refunded"),
        credits=Sum("sla_credit"),
        failed=Count("pk", filter=Q(outcome=ChargeOutcome.FAILED)),
        epochs=Count("pk"),
    )
    return {k: v or 0 for k, v in agg.items()}

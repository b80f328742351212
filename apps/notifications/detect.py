"""Finding what to tell people, from the records the network already keeps.

Each detector reads one kind of record past its cursor (a node's epoch
verdict, a slash, a jail term, a workload's stop, a matured unbonding...)
or compares a small state with what it saw last (commission rates, open
proposals, low escrow), and calls ``services.notify`` with a key that makes
each event happen once. The services that change the network know nothing
of this: a settlement commits first, and is read here afterwards.

A detector's first run starts from what exists then: a new install does
not replay the network's history to everyone."""

from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max
from django.utils.translation import gettext as _

from apps.core import epochs
from apps.core.models import Account, CheckerNode, NodeStatus
from apps.governance.models import FINAL_STATUSES, Proposal, ProposalStatus
from apps.marketplace.models import CollateralSlash, Rental, RentalMode, RentalStatus, WorkloadEvent, WorkloadState
from apps.monitoring.models import NodeEpoch
from apps.staking.models import Delegation, JailRecord, SlashEvent, UnbondingEntry

from . import services
from .models import Cursor, Event

BATCH = 500


def _ath(uath: int) -> str:
    q, r = divmod(int(uath), 1_000_000)
    return (f"{q}.{r:06d}".rstrip("0").rstrip(".")) + " ATH"


def _stakers(checker: CheckerNode) -> set[int]:
    """The operator and every delegator with stake on ``checker``."""
    owners = set(
        Delegation.objects.filter(checker=checker, amount__gt=0, delegator__owner__isnull=False).values_list(
            "delegator__owner_id", flat=True
        )
    )
    return owners | {checker.operator_id}


def _holders() -> list[int]:
    return list(
        Account.objects.filter(owner__isnull=False, owner__is_active=True)
        .exclude(available=0, bonded=0, unbonding=0)
        .values_list("owner_id", flat=True)
    )


# --- detectors over new rows ---------------------------------------------------------


def _scan(name: str, queryset, handle: Callable, id_field: str = "id") -> int:
    """Hand rows of ``queryset`` past the cursor to ``handle``, in id order.

    Only up to the highest id the previous pass saw: an id is taken when a
    row is inserted but seen when its transaction commits, and concurrent
    writers (agents reporting workloads, say) commit out of order, so a row
    just below the newest may still appear. One pass later it has."""
    with transaction.atomic():
        cursor, created = Cursor.objects.select_for_update().get_or_create(name=name)
        newest = queryset.model._default_manager.aggregate(m=Max(id_field))["m"] or 0
        if created:
            cursor.position, cursor.state = newest, {"horizon": newest}
            cursor.save(update_fields=["position", "state"])
            return 0
        horizon = cursor.state.get("horizon", cursor.position)
        filters = {f"{id_field}__gt": cursor.position, f"{id_field}__lte": horizon}
        rows = list(queryset.filter(**filters).order_by(id_field)[:BATCH])
        for row in rows:
            handle(row)
        was = (cursor.position, cursor.state)
        cursor.position = getattr(rows[-1], id_field) if len(rows) == BATCH else max(cursor.position, horizon)
        cursor.state = {"horizon": newest}
        if (cursor.position, cursor.state) != was:
            cursor.save(update_fields=["position", "state"])
        return len(rows)


def node_status() -> int:
    def handle(ne: NodeEpoch):
        node = ne.node
        event = {
            NodeStatus.DEGRADED: Event.NODE_DEGRADED,
            NodeStatus.SUSPENDED: Event.NODE_SUSPENDED,
            NodeStatus.ONLINE: Event.NODE_ONLINE,
        }.get(ne.status_after)
        if event == Event.NODE_ONLINE and ne.status_before not in (NodeStatus.DEGRADED, NodeStatus.SUSPENDED):
            return  # a first verification is not "back"
        if event is None:
            return
        uptime = "—" if ne.uptime_ppm is None else f"{ne.uptime_ppm / 10_000:.2f}%"
        services.notify(
            [node.provider_id],
            event,
            f"node-status:{ne.pk}",
            _("Node %(name)s is %(status)s") % {"name": node.name, "status": ne.status_after},
            _("In epoch %(epoch)d the checkers measured %(uptime)s uptime; the node went from %(before)s to %(after)s.")
            % {"epoch": ne.epoch, "uptime": uptime, "before": ne.status_before, "after": ne.status_after},
            url=f"/monitoring/nodes/{node.pk}/",
            data={
                "node": node.pk,
                "node_name": node.name,
                "epoch": ne.epoch,
                "status_before": ne.status_before,
                "status": ne.status_after,
                "uptime_ppm": ne.uptime_ppm,
            },
        )

    qs = NodeEpoch.objects.select_related("node").exclude(status_after="").exclude(status_before=F("status_after"))
    return _scan("node-status", qs, handle)


def node_slashed() -> int:
    def handle(s: CollateralSlash):
        services.notify(
            [s.provider_id],
            Event.NODE_SLASHED,
            f"collateral-slash:{s.pk}",
            _("%(amount)s of node %(name)s's collateral was slashed") % {"amount": _ath(s.amount), "name": s.node.name},
            s.reason,
            url=f"/marketplace/provider/nodes/{s.node_id}/",
            data={"node": s.node_id, "epoch": s.epoch, "kind": s.kind, "amount_uath": s.amount},
        )

    return _scan("collateral-slash", CollateralSlash.objects.select_related("node"), handle)


def checker_jailed() -> int:
    def handle(j: JailRecord):
        c = j.checker
        services.notify(
            _stakers(c),
            Event.CHECKER_JAILED,
            f"jail:{j.pk}",
            _("Checker %(name)s was jailed until epoch %(until)d") % {"name": c.name, "until": j.until_epoch},
            j.reason,
            url=f"/staking/checkers/{c.pk}/",
            data={"checker": c.pk, "epoch": j.epoch, "until_epoch": j.until_epoch},
        )

    return _scan("jail", JailRecord.objects.select_related("checker"), handle)


def checker_slashed() -> int:
    def handle(s: SlashEvent):
        c = s.checker
        hit = set(s.impacts.filter(delegator__owner__isnull=False).values_list("delegator__owner_id", flat=True))
        services.notify(
            _stakers(c) | hit,
            Event.CHECKER_SLASHED,
            f"slash:{s.pk}",
            _("Checker %(name)s was slashed %(pct).2f%%") % {"name": c.name, "pct": s.fraction_ppm / 10_000},
            s.reason,
            url=f"/staking/checkers/{c.pk}/",
            data={"checker": c.pk, "epoch": s.epoch, "fraction_ppm": s.fraction_ppm, "total_uath": s.total_amount},
        )

    return _scan("slash", SlashEvent.objects.select_related("checker"), handle)


def failed_over() -> int:
    def handle(r: Rental):
        services.notify(
            [r.renter_id],
            Event.RENTAL_FAILED_OVER,
            f"failover:{r.pk}",
            _("Rental %(old)d moved to node %(node)s") % {"old": r.replaces_id, "node": r.node.name},
            _("Its node failed; the rental continues as rental %(new)d.") % {"new": r.pk},
            url=f"/marketplace/rentals/{r.pk}/",
            data={"rental": r.pk, "replaces": r.replaces_id, "node": r.node_id},
        )

    return _scan("failover", Rental.objects.filter(replaces__isnull=False).select_related("node"), handle)


def container_exited() -> int:
    def handle(e: WorkloadEvent):
        services.notify(
            [e.rental.renter_id],
            Event.CONTAINER_EXITED,
            f"workload-event:{e.pk}",
            _("Rental %(id)d: the container %(state)s") % {"id": e.rental_id, "state": e.state},
            e.detail,
            url=f"/marketplace/rentals/{e.rental_id}/",
            data={"rental": e.rental_id, "state": e.state, "detail": e.detail},
        )

    qs = WorkloadEvent.objects.filter(state__in=[WorkloadState.EXITED, WorkloadState.FAILED]).select_related("rental")
    return _scan("workload-event", qs, handle)


def unbonding_matured() -> int:
    def handle(u: UnbondingEntry):
        services.notify(
            [u.delegator.owner_id],
            Event.UNBONDING_MATURED,
            f"unbonding:{u.pk}",
            _("%(amount)s unbonded from %(name)s is available") % {"amount": _ath(u.amount), "name": u.checker.name},
            "",
            url="/staking/",
            data={"checker": u.checker_id, "amount_uath": u.amount, "epoch": u.matured_epoch},
        )

    qs = UnbondingEntry.objects.filter(matured_tx__isnull=False, delegator__owner__isnull=False).select_related(
        "delegator", "checker"
    )
    return _scan("unbonding", qs, handle, id_field="matured_tx_id")


# --- detectors over current state ---------------------------------------------------------


def _state(name: str, snapshot: Callable[[], dict], compare: Callable[[dict, dict], None]) -> None:
    with transaction.atomic():
        cursor, created = Cursor.objects.select_for_update().get_or_create(name=name)
        now = snapshot()
        if not created:
            compare(cursor.state, now)
        if created or cursor.state != now:
            cursor.state = now
            cursor.save(update_fields=["state"])


def commission() -> None:
    def snapshot():
        return {str(pk): rate for pk, rate in CheckerNode.objects.values_list("pk", "commission_rate")}

    def compare(before, now):
        for pk, rate in now.items():
            if pk in before and before[pk] != rate:
                c = CheckerNode.objects.get(pk=int(pk))
                services.notify(
                    _stakers(c) - {c.operator_id},
                    Event.CHECKER_COMMISSION,
                    f"commission:{pk}:{before[pk]}:{rate}:{c.commission_changed_epoch}",
                    _("Checker %(name)s changed its commission from %(a).2f%% to %(b).2f%%")
                    % {"name": c.name, "a": before[pk] / 10_000, "b": rate / 10_000},
                    "",
                    url=f"/staking/checkers/{c.pk}/",
                    data={"checker": c.pk, "before_ppm": before[pk], "commission_ppm": rate},
                )

    _state("commission", snapshot, compare)


def proposals() -> None:
    ending_within = settings.NOTIFY_PROPOSAL_ENDING_EPOCHS

    def snapshot():
        return {str(pk): s for pk, s in Proposal.objects.values_list("pk", "status")}

    def compare(before, now):
        current = epochs.current_number()
        holders = None
        for pk, status in now.items():
            was = before.get(pk)
            p = None
            if status == ProposalStatus.VOTING and was != ProposalStatus.VOTING:
                p = Proposal.objects.get(pk=int(pk))
                holders = holders if holders is not None else _holders()
                services.notify(
                    holders,
                    Event.PROPOSAL_OPENED,
                    f"proposal-opened:{pk}",
                    _("Proposal %(id)s is open for voting: %(title)s") % {"id": pk, "title": p.title},
                    _("Voting ends with epoch %(end)s.") % {"end": p.voting_end_epoch},
                    url=f"/governance/{pk}/",
                    data={"proposal": int(pk), "voting_end_epoch": p.voting_end_epoch},
                )
            if status in FINAL_STATUSES + (ProposalStatus.PASSED,) and was == ProposalStatus.VOTING:
                p = p or Proposal.objects.get(pk=int(pk))
                voters = set(p.votes.values_list("voter__owner_id", flat=True))
                holders = holders if holders is not None else _holders()
                outcome = "passed" if status in (ProposalStatus.PASSED, ProposalStatus.EXECUTED) else "failed"
                services.notify(
                    set(holders) | {v for v in voters if v},
                    Event.PROPOSAL_DECIDED,
                    f"proposal-decided:{pk}",
                    _("Proposal %(id)s %(outcome)s: %(title)s") % {"id": pk, "outcome": outcome, "title": p.title},
                    p.status_reason,
                    url=f"/governance/{pk}/",
                    data={"proposal": int(pk), "status": status, "outcome": outcome},
                )
        # Closing soon: checked every time, told once.
        for p in Proposal.objects.filter(
            status=ProposalStatus.VOTING, voting_end_epoch__lte=current + ending_within, voting_end_epoch__gte=current
        ):
            holders = holders if holders is not None else _holders()
            services.notify(
                holders,
                Event.PROPOSAL_ENDING,
                f"proposal-ending:{p.pk}",
                _("Voting on proposal %(id)d closes with epoch %(end)d: %(title)s")
                % {"id": p.pk, "end": p.voting_end_epoch, "title": p.title},
                "",
                url=f"/governance/{p.pk}/",
                data={"proposal": p.pk, "voting_end_epoch": p.voting_end_epoch},
            )

    _state("proposals", snapshot, compare)


def escrow_low() -> None:
    """On-demand rentals whose escrow covers fewer than N more epochs."""
    within = settings.NOTIFY_ESCROW_EPOCHS
    rows = Rental.objects.filter(status=RentalStatus.ACTIVE, mode=RentalMode.ON_DEMAND).select_related("node")
    for r in rows.iterator(chunk_size=BATCH):
        left = r.escrow_left
        if r.price_per_epoch and left < within * r.price_per_epoch:
            services.notify(
                [r.renter_id],
                Event.ESCROW_LOW,
                # A top-up changes the total: the next shortfall is told again.
                f"escrow-low:{r.pk}:{r.escrow_total}",
                _("Rental %(id)d has escrow for %(n)d more epochs") % {"id": r.pk, "n": left // r.price_per_epoch},
                _("%(left)s left at %(price)s an epoch; top it up to keep node %(node)s.")
                % {"left": _ath(left), "price": _ath(r.price_per_epoch), "node": r.node.name},
                url=f"/marketplace/rentals/{r.pk}/",
                data={"rental": r.pk, "escrow_left_uath": left, "price_per_epoch_uath": r.price_per_epoch},
            )


DETECTORS = [
    node_status,
    node_slashed,
    checker_jailed,
    checker_slashed,
    commission,
    escrow_low,
    failed_over,
    container_exited,
    proposals,
    unbonding_matured,
]


def run_all() -> None:
    for detector in DETECTORS:
        detector()

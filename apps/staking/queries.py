"""What the staking pages and the API show; one place so every page and
the API say the same numbers. Reads only: everything that writes is in
:mod:`apps.staking.services`.

Checkers: the list with its figures (delegators, APR, report accuracy,
slashes, jailings). Delegators: their positions, pending rewards and
history. Audits: what every delegator is owed and the rounding remainder,
from the same reward index arithmetic the services write with
(:mod:`apps.staking.services.rewards`), so a page never shows a reward the
services would not pay.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, Max, Sum
from django.utils.translation import gettext_lazy as _

from apps.core import epochs, parameters
from apps.core.models import Account, CheckerNode, CheckerStatus, Checkpoint, LedgerTransaction
from apps.monitoring.models import CheckerEpoch

from .models import (
    Delegation,
    JailRecord,
    Redelegation,
    RewardPeriod,
    SlashEvent,
    StakingState,
)
from .services._common import PPM, SCALE, _epoch
from .services.rewards import _is_earning, _lot_scaled

WINDOW = 7  # "recent" epochs for accuracy and delivery, and the least the APR spans
# The APR spans a day of epochs at least: seven one-minute epochs say nothing
# about a year.
APR_WINDOW_SECONDS = 24 * 3600


def apr_window_epochs() -> int:
    return max(WINDOW, APR_WINDOW_SECONDS // parameters.get("epoch_seconds"))


SORTS = {
    "stake": (_("Total stake"), lambda r: (-r.checker.total_stake, r.checker.name)),
    "self": (_("Self-stake"), lambda r: (-r.checker.self_stake, r.checker.name)),
    "commission": (_("Commission (lowest)"), lambda r: (r.checker.commission_rate, r.checker.name)),
    "apr": (_("Recent APR"), lambda r: (-(r.apr_ppm or 0), r.checker.name)),
    "accuracy": (
        _("Report accuracy"),
        lambda r: (-(r.accuracy_ppm if r.accuracy_ppm is not None else -1), r.checker.name),
    ),
    "name": (_("Name"), lambda r: (r.checker.name.lower(),)),
}
STATUSES = {"": _("All"), **dict(CheckerStatus.choices)}


@dataclass
class CheckerRow:
    checker: CheckerNode
    delegators: int = 0
    apr_ppm: int | None = None
    accuracy_ppm: int | None = None
    delivery_ppm: int | None = None
    slashes: int = 0
    slashed_total: int = 0
    last_slash_epoch: int | None = None
    jailings: int = 0
    share_ppm: int | None = None  # of the stake behind all active checkers
    per_day: int | None = None  # what an amount delegated now would earn a day at the APR

    @property
    def takes_delegations(self) -> bool:
        return self.checker.status == CheckerStatus.ACTIVE


def epochs_per_year() -> int:
    return 365 * 24 * 3600 // parameters.get("epoch_seconds")


def apr_ppm(rewards: int, stake_epochs: int, per_year: int) -> int | None:
    """Annual return in ppm: the stakers' rewards (after commission) over the
    stake that earned them, both summed over the same distributions (the
    eligible stake each recorded), times epochs per year; ``None`` without a
    base. Weighing each epoch by its stake keeps an epoch paid to a sliver of
    stake (a checker emptied by a slash) from dominating the figure.

    Worked example: 9.5 ATH on 100,000 ATH, then 9.5 ATH on 90,000 ATH, with
    one-hour epochs: 19 ATH / 190,000 ATH-epochs = 100 ppm per epoch, x 8,760
    epochs a year = 876,000 ppm = 87.6%."""
    if stake_epochs <= 0:
        return None
    return rewards * PPM * per_year // stake_epochs


def _report_stats(ids, since: int) -> dict[int, tuple[int | None, int | None]]:
    """(accuracy, delivery) in ppm over recent epochs, from the monitoring
    app's per-epoch checker counts."""
    rows = (
        CheckerEpoch.objects.filter(checker_id__in=ids, epoch__gte=since)
        .order_by()
        .values("checker_id")
        .annotate(a=Sum("assigned"), d=Sum("delivered"), c=Sum("correct"))
    )
    out = {}
    for r in rows:
        accuracy = r["c"] * PPM // r["d"] if r["d"] else None
        delivery = r["d"] * PPM // r["a"] if r["a"] else None
        out[r["checker_id"]] = (accuracy, delivery)
    return out


def checker_rows(*, sort: str = "stake", status: str = "", q: str = "") -> list[CheckerRow]:
    checkers = CheckerNode.objects.select_related("operator__wallet", "region")
    if status in CheckerStatus.values:
        checkers = checkers.filter(status=status)
    if q:
        checkers = checkers.filter(name__icontains=q)
    rows = {c.pk: CheckerRow(checker=c) for c in checkers}
    if not rows:
        return []
    ids = list(rows)
    now = epochs.current_number()
    since = now - WINDOW
    for cid, n in (
        Delegation.objects.filter(checker_id__in=ids)
        .order_by()
        .values("checker_id")
        .annotate(n=Count("delegator_id", distinct=True))
        .values_list("checker_id", "n")
    ):
        rows[cid].delegators = n
    per_year = epochs_per_year()
    for r in (
        RewardPeriod.objects.filter(checker_id__in=ids, epoch__gte=now - apr_window_epochs())
        .order_by()
        .values("checker_id")
        .annotate(rewards=Sum("delegators_share"), stake=Sum("eligible_stake"))
    ):
        rows[r["checker_id"]].apr_ppm = apr_ppm(r["rewards"] or 0, r["stake"] or 0, per_year)
    for cid, (accuracy, delivery) in _report_stats(ids, since).items():
        rows[cid].accuracy_ppm, rows[cid].delivery_ppm = accuracy, delivery
    for r in (
        SlashEvent.objects.filter(checker_id__in=ids)
        .order_by()
        .values("checker_id")
        .annotate(n=Count("id"), total=Sum("total_amount"), last=Max("infraction_epoch"))
    ):
        row = rows[r["checker_id"]]
        row.slashes, row.slashed_total, row.last_slash_epoch = r["n"], r["total"] or 0, r["last"]
    for cid, n in (
        JailRecord.objects.filter(checker_id__in=ids)
        .order_by()
        .values("checker_id")
        .annotate(n=Count("id"))
        .values_list("checker_id", "n")
    ):
        rows[cid].jailings = n
    active_stake = CheckerNode.objects.filter(status=CheckerStatus.ACTIVE).aggregate(s=Sum("total_stake"))["s"] or 0
    for row in rows.values():
        if row.takes_delegations and active_stake:
            row.share_ppm = row.checker.total_stake * PPM // active_stake
    key = SORTS.get(sort, SORTS["stake"])[1]
    return sorted(rows.values(), key=key)


def expected_per_day(rows: list[CheckerRow], amount: int) -> None:
    """Set each row's ``per_day``: ``amount`` micro-ATH delegated at its
    recent APR (after commission) earns this much a day, rounded down; none
    for a checker that takes no delegations or has no APR yet."""
    for row in rows:
        if row.takes_delegations and row.apr_ppm is not None:
            row.per_day = amount * row.apr_ppm // PPM // 365


def checker_row(checker: CheckerNode) -> CheckerRow:
    for row in checker_rows(q=checker.name):
        if row.checker.pk == checker.pk:
            return row
    return CheckerRow(checker=checker)


def stake_history(account) -> list[dict]:
    """The account's bonded and unbonding balance after every ledger
    transaction that touched it (from the ledger's checkpoints)."""
    points = list(Checkpoint.objects.filter(account=account).order_by("height").values("height", "bonded", "unbonding"))
    times = dict(
        LedgerTransaction.objects.filter(height__in=[p["height"] for p in points]).values_list("height", "created_at")
    )
    return [
        {"t": times[p["height"]].isoformat(), "bonded": str(p["bonded"]), "unbonding": str(p["unbonding"])}
        for p in points
        if p["height"] in times
    ]


def reward_history(account) -> list[dict]:
    """Cumulative rewards received, claim by claim."""
    total = 0
    out = []
    for claim in account.reward_claims.order_by("id").values("created_at", "amount"):
        total += claim["amount"]
        out.append({"t": claim["created_at"].isoformat(), "cumulative": str(total)})
    return out


# --- Delegators' positions and rewards ---------------------------------------


@dataclass
class Position:
    checker: CheckerNode
    amount: int  # bonded to this checker
    earning: int  # of which already earning
    waiting: int  # bonded this epoch or since the last distribution
    earns_from_epoch: int | None  # the first epoch the waiting part earns for
    pending_reward: int
    redelegation_locked_until: int | None = None


def pending_rewards(delegator: Account, checker: CheckerNode | None = None) -> int:
    """Whole micro-ATH ``delegator`` could claim now (from one checker or all)."""
    rows = Delegation.objects.filter(delegator=delegator)
    if checker is not None:
        rows = rows.filter(checker=checker)
    lots = list(rows.select_related("checker__staking"))
    return sum(_pending_by_checker(lots).values())


def _pending_by_checker(lots) -> dict[int, int]:
    cache: dict = {}
    scaled = defaultdict(int)
    for lot in lots:
        state = getattr(lot.checker, "staking", None) or StakingState(checker=lot.checker)
        scaled[lot.checker_id] += _lot_scaled(lot, state, cache)
    return {cid: s // SCALE for cid, s in scaled.items()}


def positions(delegator: Account, *, epoch: int | None = None) -> list[Position]:
    e = _epoch(epoch)
    lots = list(Delegation.objects.filter(delegator=delegator).select_related("checker__staking", "checker__operator"))
    pending = _pending_by_checker(lots)
    grouped = defaultdict(list)
    for lot in lots:
        grouped[lot.checker_id].append(lot)
    locks = dict(
        Redelegation.objects.filter(delegator=delegator, maturity_epoch__gt=e)
        .values("dst_id")
        .annotate(m=Max("maturity_epoch"))
        .values_list("dst_id", "m")
    )
    out = []
    for checker_id, group in grouped.items():
        checker = group[0].checker
        state = getattr(checker, "staking", None)
        last = state.last_epoch if state else None
        waiting = [lot for lot in group if not _is_earning(lot.start_epoch, last)]
        out.append(
            Position(
                checker=checker,
                amount=sum(lot.amount for lot in group),
                earning=sum(lot.amount for lot in group if _is_earning(lot.start_epoch, last)),
                waiting=sum(lot.amount for lot in waiting),
                earns_from_epoch=min((lot.start_epoch for lot in waiting), default=None),
                pending_reward=pending.get(checker_id, 0),
                redelegation_locked_until=locks.get(checker_id),
            )
        )
    out.sort(key=lambda p: (-p.amount, p.checker.name))
    return out


def delegated_to(delegator: Account, checker: CheckerNode) -> int:
    return Delegation.objects.filter(delegator=delegator, checker=checker).aggregate(s=Sum("amount"))["s"] or 0


def owed_scaled(checker: CheckerNode) -> dict[int, int]:
    """Every delegator's reward from ``checker`` so far, x SCALE, by account
    id (reads every delegation of the checker: for audits and tests)."""
    state = StakingState.objects.filter(checker=checker).first() or StakingState(checker=checker)
    cache: dict = {}
    owed = defaultdict(int)
    for lot in Delegation.objects.filter(checker=checker):
        owed[lot.delegator_id] += _lot_scaled(lot, state, cache)
    return dict(owed)


def rounding_remainder_scaled(checker: CheckerNode) -> int:
    """What the pool holds for ``checker`` beyond every delegation's reward,
    x SCALE. Always equals ``StakingState.remainder_scaled``."""

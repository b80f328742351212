"""Checker rewards: the lazy reward index and each delegator's lots.

Rewards (lazy, Cosmos F1 style, by epoch)
    ``distribute`` adds ``delegators' share x SCALE // eligible stake`` to the
    checker's cumulative ratio and records a :class:`RewardPeriod`; it never
    reads delegations, so it costs the same for ten delegators or a million.
    A delegation (lot) dated epoch *s* earns from distributions for epochs
    after *s* only. A lot is dated the epoch it was bonded in, or the one
    before if the scheduler had not yet fixed that epoch's assignment round
    (see ``_bonding_epoch``): an epoch's reward is shared by the stake bonded
    when its round was fixed, so stake bonded later in an epoch, or after it
    ended but before it was settled, gets nothing of that epoch's reward. Stake that
    leaves before an epoch is settled forfeits that epoch's reward (it stays
    slashable for it while unbonding).

Rounding
    Everything is integer micro-ATH and rounds down. Each delegation keeps
    its reward x SCALE, so only the index's own rounding (under 10**-10 uATH
    per distribution at any realistic stake) and the fraction left when a
    position closes are lost to delegators; both are added exactly to
    ``StakingState.remainder_scaled`` and swept to ``DUST`` in whole
    micro-ATH, so ``REWARDS_POOL`` always equals the sum of
    ``rewards_outstanding`` over checkers.

Also here: :class:`_Pair`, one delegator's lots on one checker, which
delegating, undelegating, redelegating, claiming and slashing all change
in memory and write with :func:`_write`; and the payment of rewards from
the pool (:func:`_pay_rewards`) and of the rounding remainder to dust
(:func:`_sweep_dust`). The index arithmetic (:func:`_ratio_at`,
:func:`_is_earning`, :func:`_lot_scaled`) is also what
:mod:`apps.staking.queries` reads pending rewards with, so both sides use
one formula.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from apps.core import bulk, ledger
from apps.core.models import Account, Bucket, CheckerNode, ModuleAccount, TxKind

from ..models import Delegation, PendingStake, RewardClaim, RewardPeriod, StakingState
from ._common import PPM, SCALE, _check_amount, _lock_checkers, _operator_account_id
from .errors import AlreadyDistributed, StakingError


def _ratio_at(checker_id: int, epoch: int, cache: dict) -> int:
    """The checker's cumulative ratio after every distribution for epochs up
    to ``epoch`` (distributions run in epoch order, one per epoch)."""
    key = (checker_id, epoch)
    if key not in cache:
        row = (
            RewardPeriod.objects.filter(checker_id=checker_id, epoch__lte=epoch)
            .order_by("-epoch")
            .values_list("cumulative_ratio", flat=True)
            .first()
        )
        cache[key] = int(row) if row is not None else 0
    return cache[key]


def _is_earning(start_epoch: int, last_epoch: int | None) -> bool:
    """Whether a lot bonded in ``start_epoch`` has earned from (or been
    passed over by) a distribution: such lots share one base and merge."""
    return last_epoch is not None and start_epoch <= last_epoch


def _lot_scaled(lot: Delegation, state: StakingState, cache: dict) -> int:
    """The lot's reward so far, x SCALE."""
    if not _is_earning(lot.start_epoch, state.last_epoch):
        return lot.accrued_scaled
    base = _ratio_at(state.checker_id, lot.start_epoch, cache)
    return lot.accrued_scaled + lot.amount * (state.cumulative_ratio - base)


@dataclass
class _Pair:
    """One delegator's lots on one checker, changed in memory and written
    by :func:`_write` (so a slash can batch every pair of a checker)."""

    delegator_id: int
    checker: CheckerNode
    state: StakingState
    lots: list[Delegation]
    deleted: list[int] = field(default_factory=list)
    dirty: dict[int, Delegation] = field(default_factory=dict)
    created: list[Delegation] = field(default_factory=list)
    pending_delta: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    # What the last claim or close paid from: set by claim and take.
    paid_inputs: dict | None = None

    def __post_init__(self):
        self.lots.sort(key=lambda lot: lot.start_epoch)

    @property
    def total(self) -> int:
        return sum(lot.amount for lot in self.lots)

    def _drop(self, lot):
        if lot.pk:
            self.deleted.append(lot.pk)
            self.dirty.pop(lot.pk, None)
        else:
            self.created.remove(lot)

    def _touch(self, lot):
        if lot.pk:
            self.dirty[lot.pk] = lot

    def settle(self, cache: dict) -> None:
        """Fold every earning lot into one lot based at the latest
        distribution, with its reward so far in ``accrued_scaled``."""
        m = self.state.last_epoch
        earning = [lot for lot in self.lots if _is_earning(lot.start_epoch, m)]
        if not earning:
            return
        keep = earning[0]
        accrued = sum(_lot_scaled(lot, self.state, cache) for lot in earning)
        amount = sum(lot.amount for lot in earning)
        if len(earning) == 1 and keep.start_epoch == m:
            return
        for lot in earning[1:]:
            self._drop(lot)
        keep.amount, keep.accrued_scaled, keep.start_epoch = amount, accrued, m
        self._touch(keep)
        self.lots = [keep] + [lot for lot in self.lots if not _is_earning(lot.start_epoch, m)]

    def take(self, amount: int) -> int:
        """Remove ``amount`` of stake, newest lots first (they have earned
        least). Call :meth:`settle` first. When the position closes, its
        reward is paid: returns the whole micro-ATH to pay."""
        m = self.state.last_epoch
        self.paid_inputs = None
        stake = self._earning_stake()
        remaining = amount
        closing_accrued = 0
        for lot in list(reversed(self.lots)):
            if not remaining:
                break
            cut = min(lot.amount, remaining)
            lot.amount -= cut
            remaining -= cut
            if not _is_earning(lot.start_epoch, m):
                self.pending_delta[lot.start_epoch] -= cut
            if lot.amount == 0:
                closing_accrued += lot.accrued_scaled
                self.lots.remove(lot)
                self._drop(lot)
            else:
                self._touch(lot)
        assert remaining == 0, "took more stake than the position holds"
        if self.lots:
            # Only the oldest (earning) lot accrues, and it goes last.
            assert closing_accrued == 0
            return 0
        self.paid_inputs = _inputs(stake, closing_accrued, m)
        payout, fraction = divmod(closing_accrued, SCALE)
        self.state.remainder_scaled += fraction
        self.state.rewards_outstanding -= payout
        return payout

    def add(self, amount: int, epoch: int) -> None:
        m = self.state.last_epoch
        # Never base new stake before a distribution that already happened.
        start = epoch if m is None else max(epoch, m)
        for lot in self.lots:
            if lot.start_epoch == start:
                lot.amount += amount
                self._touch(lot)
                break
        else:
            lot = Delegation(
                delegator_id=self.delegator_id, checker=self.checker, amount=amount, start_epoch=start, accrued_scaled=0
            )
            self.lots.append(lot)
            self.lots.sort(key=lambda x: x.start_epoch)
            self.created.append(lot)
        if not _is_earning(start, m):
            self.pending_delta[start] += amount

    def _earning_stake(self) -> int:
        """The stake of the settled earning lot (the oldest), 0 if none."""
        if self.lots and _is_earning(self.lots[0].start_epoch, self.state.last_epoch):
            return self.lots[0].amount
        return 0

    def claim(self, cache: dict) -> int:
        """Pay out the whole micro-ATH earned; the fraction stays on the lot."""
        self.paid_inputs = None
        self.settle(cache)
        if not self.lots or not _is_earning(self.lots[0].start_epoch, self.state.last_epoch):
            return 0
        lot = self.lots[0]
        self.paid_inputs = _inputs(lot.amount, lot.accrued_scaled, self.state.last_epoch)
        payout, lot.accrued_scaled = divmod(lot.accrued_scaled, SCALE)
        if payout:
            self._touch(lot)
            self.state.rewards_outstanding -= payout
        return payout


def _inputs(stake: int, reward_scaled: int, epoch: int | None) -> dict:
    """What a payout is recomputed from (docs/auditing.md): the position's
    earning stake, its whole reward so far x SCALE (the amount paid is that
    divided by SCALE, rounded down) and the last distribution it includes."""
    return {"stake": stake, "reward_scaled": reward_scaled, "to_epoch": epoch}


def _load_pairs(checker: CheckerNode, state: StakingState, delegator_ids=None) -> dict[int, _Pair]:
    rows = Delegation.objects.select_for_update().filter(checker=checker)
    if delegator_ids is not None:
        rows = rows.filter(delegator_id__in=list(delegator_ids))
    lots = defaultdict(list)
    for lot in rows.order_by("delegator_id", "start_epoch"):
        lots[lot.delegator_id].append(lot)
    ids = delegator_ids if delegator_ids is not None else lots.keys()
    return {d: _Pair(d, checker, state, lots.get(d, [])) for d in ids}


def _write(pairs) -> None:
    deleted, dirty, created, pending = [], [], [], defaultdict(int)
    for pair in pairs:
        deleted += pair.deleted
        dirty += pair.dirty.values()
        created += pair.created
        for epoch, delta in pair.pending_delta.items():
            if delta:
                pending[(pair.checker.pk, epoch)] += delta
        pair.deleted, pair.dirty, pair.created, pair.pending_delta = [], {}, [], defaultdict(int)
    if deleted:
        Delegation.objects.filter(pk__in=deleted).delete()
    if dirty:
        now = timezone.now()
        for lot in dirty:
            lot.updated_at = now
        bulk.update_fields(dirty, ["amount", "start_epoch", "accrued_scaled", "updated_at"])
    if created:
        Delegation.objects.bulk_create(created)
    for (checker_id, epoch), delta in pending.items():
        row, _ = PendingStake.objects.get_or_create(checker_id=checker_id, epoch=epoch)
        PendingStake.objects.filter(pk=row.pk).update(amount=F("amount") + delta)
    if pending:
        PendingStake.objects.filter(checker_id__in={c for c, _ in pending}, amount=0).delete()


def _pay_rewards(payouts: list[tuple[int, CheckerNode, int, dict | None]], epoch: int, *, automatic: bool, actor=None):
    """Pay ``(account id, checker, amount, inputs)`` from the rewards pool in
    one posting and record the claims. ``inputs`` is the pair's
    ``paid_inputs`` from the claim or close that computed ``amount``: the
    posting's ``meta.positions`` publishes it with each position's address
    and checker, so the public ledger alone recomputes every payout."""
    payouts = [p for p in payouts if p[2] > 0]
    if not payouts:
        return None
    pool = ledger.module_account(ModuleAccount.REWARDS_POOL)
    per_account = defaultdict(int)
    for account_id, _, amount, _ in payouts:
        per_account[account_id] += amount
    legs = [ledger.Leg(pool, Bucket.AVAILABLE, -sum(per_account.values()))]
    legs += [ledger.Leg(a, Bucket.AVAILABLE, amt) for a, amt in sorted(per_account.items())]
    names = sorted({c.name for _, c, _, _ in payouts})
    memo = ("Rewards paid as the position closed: " if automatic else "Rewards claimed: ") + ", ".join(names)
    addresses = dict(Account.objects.filter(pk__in=list(per_account)).values_list("pk", "address"))
    positions = []
    for account_id, checker, amount, inputs in payouts:
        if inputs is None or inputs["reward_scaled"] // SCALE != amount:
            # An invariant, not input: a payout the public ledger could not recompute is never posted.
            raise RuntimeError("a reward payout without the inputs it was computed from")
        positions.append(
            {
                "address": addresses[account_id],
                "checker": checker.pk,
                "amount": str(amount),
                "stake": str(inputs["stake"]),
                "reward_scaled": str(inputs["reward_scaled"]),
                "to_epoch": inputs["to_epoch"],
            }
        )
    meta = {
        "checkers": sorted({c.pk for _, c, _, _ in payouts}),
        "automatic": automatic,
        "positions": positions,
    }
    tx = ledger.post(TxKind.REWARD, legs, memo=memo, meta=meta, actor=actor)
    RewardClaim.objects.bulk_create(
        RewardClaim(delegator_id=a, checker=c, amount=amt, epoch=epoch, automatic=automatic, tx=tx)
        for a, c, amt, _ in payouts
    )
    return tx


def _sweep_dust(states: list[StakingState], actor=None) -> None:
    """Move whole micro-ATH of rounding remainder from the pool to dust."""
    sweeps = []
    for state in states:
        whole, state.remainder_scaled = divmod(state.remainder_scaled, SCALE)
        if whole:
            state.rewards_outstanding -= whole
            state.dust_total += whole
            sweeps.append(whole)
    if sweeps:
        ledger.transfer(
            ledger.module_account(ModuleAccount.REWARDS_POOL),
            ledger.module_account(ModuleAccount.DUST),
            sum(sweeps),
            kind=TxKind.DUST_SWEEP,
            memo="Staking rewards: rounding remainder to dust",
            actor=actor,
        )


def distribute(
    checker: CheckerNode, amount: int, epoch: int, source_account: Account, *, memo: str = "", actor=None
) -> RewardPeriod:
    """Pay ``checker``'s reward for ``epoch``: ``amount`` micro-ATH from
    ``source_account``'s available balance (e.g. the emission reserve), in
    one posting: the commission (rounded down) to the operator's wallet, the
    rest to the rewards pool for the stake that was bonded before ``epoch``
    (shared through the index; cost independent of the number of
    delegators). Any whole micro-ATH of rounding remainder goes to dust.

    One distribution per checker and epoch, in epoch order: a second call for
    the same or an earlier epoch raises :class:`AlreadyDistributed`, so a
    re-run of settlement pays once. If none of the stake that backed the
    epoch's round is left, the whole reward goes to the operator."""
    paid, refused = distribute_many({checker.pk: amount}, epoch, source_account, memo=memo, actor=actor)
    if checker.pk in refused:
        raise refused[checker.pk]
    return paid[checker.pk]


def distribute_many(
    rewards: dict[int, int], epoch: int, source_account: Account, *, memo: str = "", actor=None
) -> tuple[dict[int, RewardPeriod], dict[int, StakingError]]:
    """:func:`distribute` for many checkers at once (checker id -> amount),
    as settlement pays them: the same rule for each, in one posting and a
    fixed number of queries however many checkers there are. Returns the
    reward periods of those paid and, for each checker refused (already paid
    for this epoch), the reason; a refused checker's amount stays with
    ``source_account``."""
    for amount in rewards.values():
        _check_amount(amount)
    epoch = int(epoch)
    if not rewards:
        return {}, {}
    with transaction.atomic():
        ledger.lock_head()
        checkers = _lock_checkers(rewards)
        have = set(StakingState.objects.filter(checker_id__in=list(checkers)).values_list("checker_id", flat=True))
        StakingState.objects.bulk_create([StakingState(checker_id=c) for c in checkers if c not in have])
        states = {
            s.checker_id: s
            for s in StakingState.objects.select_for_update().filter(checker_id__in=list(checkers)).order_by("pk")
        }
        not_yet = dict(
            PendingStake.objects.filter(checker_id__in=list(checkers), epoch__gte=epoch)
            .order_by()
            .values("checker_id")
            .annotate(s=Sum("amount"))
            .values_list("checker_id", "s")
        )
        operator_wallets = dict(
            Account.objects.filter(owner_id__in={c.operator_id for c in checkers.values()}).values_list(
                "owner_id", "pk"
            )
        )
        refused: dict[int, StakingError] = {}
        paid: dict[int, tuple] = {}
        legs_commission: dict[int, int] = defaultdict(int)
        to_pool = to_dust = total = 0
        for checker_id in sorted(checkers):
            checker, state, amount = checkers[checker_id], states[checker_id], rewards[checker_id]
            if state.last_epoch is not None and epoch <= state.last_epoch:
                refused[checker_id] = AlreadyDistributed(
                    f"{checker.name} was already paid for epoch {state.last_epoch}; "
                    "rewards go out once per epoch, in order."
                )
                continue
            eligible = max(0, checker.total_stake - (not_yet.get(checker_id) or 0))
            rate = checker.commission_rate
            commission = amount * rate // PPM
            if not eligible:
                # Every lot that backed the round has left since: the earned
                # reward still goes to someone, all of it to the operator
                # (docs/rules.md §6: never left unpaid in the reserve).
                commission = amount
            share = amount - commission
            if share:
                step = share * SCALE // eligible
                state.remainder_scaled += share * SCALE - step * eligible
                state.cumulative_ratio += step
            state.rewards_outstanding += share
            dust, state.remainder_scaled = divmod(state.remainder_scaled, SCALE)
            state.rewards_outstanding -= dust
            if commission:
                wallet = operator_wallets.get(checker.operator_id) or _operator_account_id(checker)
                legs_commission[wallet] += commission
            to_pool += share - dust
            to_dust += dust
            total += amount
            state.period += 1
            state.last_epoch = epoch
            state.rewards_total += amount
            state.commission_total += commission
            state.dust_total += dust
            paid[checker_id] = (checker, state, amount, commission, share, eligible, rate)
        if not paid:
            return {}, refused
        legs = [ledger.Leg(source_account, Bucket.AVAILABLE, -total)]
        legs += [ledger.Leg(w, Bucket.AVAILABLE, a) for w, a in sorted(legs_commission.items())]
        if to_pool:
            legs.append(ledger.Leg(ledger.module_account(ModuleAccount.REWARDS_POOL), Bucket.AVAILABLE, to_pool))
        if to_dust:
            legs.append(ledger.Leg(ledger.module_account(ModuleAccount.DUST), Bucket.AVAILABLE, to_dust))
        if len(paid) == 1:
            ((checker, _, _, commission, share, _, _),) = paid.values()
            tx_memo = memo or f"Checker rewards: {checker.name}, epoch {epoch}"
            meta = {"checker": checker.pk, "epoch": epoch, "commission": str(commission), "delegators": str(share)}
        else:
            tx_memo = memo or f"Checker rewards, epoch {epoch}: {len(paid)} checkers"
            meta = {
                "checkers": len(paid),
                "epoch": epoch,
                "commission": str(sum(legs_commission.values())),
                "delegators": str(to_pool + to_dust),
            }
        # Each checker's reward and commission, so the ledger alone rebuilds
        # every checker's index (docs/auditing.md).
        meta["split"] = {str(c): [str(p[2]), str(p[3])] for c, p in sorted(paid.items())}
        tx = ledger.post(TxKind.REWARD, legs, memo=tx_memo, meta=meta, actor=actor)
        bulk.update_fields(
            [p[1] for p in paid.values()],
            [
                "period",
                "last_epoch",
                "cumulative_ratio",
                "remainder_scaled",
                "rewards_outstanding",
                "rewards_total",
                "commission_total",
                "dust_total",
            ],
        )
        # Stake bonded up to this epoch earns from now on: its count is done.
        PendingStake.objects.filter(checker_id__in=list(paid), epoch__lte=epoch).delete()
        periods = RewardPeriod.objects.bulk_create(
            RewardPeriod(
                checker=checker,
                period=state.period,
                epoch=epoch,
                reward=amount,
                commission=commission,
                delegators_share=share,
                eligible_stake=eligible,
                commission_rate=rate,
                cumulative_ratio=state.cumulative_ratio,
                tx=tx,
            )
            for checker, state, amount, commission, share, eligible, rate in paid.values()
        )
        return {p.checker_id: p for p in periods}, refused

"""Checker staking and delegation (PROTOCOL sections 5, 6 and 9).

Plain functions that views, the API, management commands and settlement
call. Every movement of ATH goes through :mod:`apps.core.ledger` inside one
database transaction; a refused action raises :class:`StakingError` (with a
message for the person) and changes nothing.

Where the ATH is
    Delegated ATH stays in the delegator's own account: ``bonded`` while it
    backs a checker, ``unbonding`` while an undelegation matures. Unclaimed
    rewards sit in the ``REWARDS_POOL`` module account; commission is paid to
    the operator's wallet at distribution; slashes go to ``BURN``; the
    rounding remainder of rewards goes to ``DUST``.

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

Settlement calls :func:`distribute`, :func:`mature_unbonding`,
:func:`slash_checker` and :func:`jail`; every service that depends on the
epoch takes ``epoch=`` (default: the current one) so settlement can act for
the epoch it is settling and tests can step epochs.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, Max, Sum
from django.utils import timezone

from apps.accounts.services import open_wallet
from apps.core import bulk, epochs, ledger, parameters
from apps.core.amounts import format_uath
from apps.core.models import Account, Bucket, ChainHead, CheckerNode, CheckerStatus, ModuleAccount, TxKind
from apps.core.retry import retry_atomic
from apps.monitoring import assignment

from .models import (
    CommissionChange,
    Delegation,
    JailRecord,
    PendingStake,
    Redelegation,
    RewardClaim,
    RewardPeriod,
    SlashEvent,
    SlashImpact,
    StakingState,
    UnbondingEntry,
)

PPM = 1_000_000
# Reward index precision. Index rounding costs a delegation less than
# stake / SCALE uATH per distribution: < 10**-10 uATH for the whole supply.
SCALE = 10**27


class StakingError(ValueError):
    """A staking action that was refused; nothing changed. The message is
    for the person who asked."""


class NotAllowed(StakingError):
    """The person may not act on this checker or delegation."""


class AlreadyDistributed(StakingError):
    """``distribute`` was already called for this checker and epoch."""


def pct(ppm: int) -> str:
    return parameters.definition("commission_max_change").format(ppm)


def _epoch(epoch: int | None) -> int:
    return epochs.current_number() if epoch is None else int(epoch)


def _serialise() -> None:
    """Take the chain-head lock first, as every ledger posting does, so all
    staking actions run one at a time and lock rows in one order (chain head,
    checkers, accounts): no deadlocks with settlement or wallets."""
    try:
        ChainHead.objects.select_for_update().get(pk=1)
    except ChainHead.DoesNotExist:
        raise StakingError("The ledger has no genesis yet.") from None


def _lock_checkers(ids) -> dict[int, CheckerNode]:
    ids = sorted(set(ids))
    found = {c.pk: c for c in CheckerNode.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
    if len(found) != len(ids):
        raise StakingError("No such checker.")
    return found


def _lock_state(checker: CheckerNode) -> StakingState:
    StakingState.objects.get_or_create(checker=checker)
    return StakingState.objects.select_for_update().get(checker=checker)


def _operator_account_id(checker: CheckerNode) -> int:
    return open_wallet(checker.operator).pk


def _bonding_epoch(e: int) -> int:
    """The epoch a lot bonded now in epoch ``e`` is dated to. The stake that
    shares an epoch's reward is the stake bonded when its assignment round
    was fixed (PROTOCOL section 6): stake bonded before the scheduler fixed
    round ``e`` (at genesis, or while the scheduler was down) earns from
    ``e`` itself, so it is dated ``e - 1``; stake bonded after earns from
    ``e + 1``."""
    return e if assignment.round_fixed(e) else e - 1


def _check_amount(amount) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise StakingError("Amounts are whole micro-ATH.")
    if amount <= 0:
        raise StakingError("The amount must be more than zero.")
    return amount


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
            lot = Delegation(delegator_id=self.delegator_id, checker=self.checker, amount=amount, start_epoch=start,
                             accrued_scaled=0)
            self.lots.append(lot)
            self.lots.sort(key=lambda x: x.start_epoch)
            self.created.append(lot)
        if not _is_earning(start, m):
            self.pending_delta[start] += amount

    def claim(self, cache: dict) -> int:
        """Pay out the whole micro-ATH earned; the fraction stays on the lot."""
        self.settle(cache)
        if not self.lots or not _is_earning(self.lots[0].start_epoch, self.state.last_epoch):
            return 0
        lot = self.lots[0]
        payout, lot.accrued_scaled = divmod(lot.accrued_scaled, SCALE)
        if payout:
            self._touch(lot)
            self.state.rewards_outstanding -= payout
        return payout


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


def _refresh_status(checker: CheckerNode, epoch: int) -> None:
    if checker.status == CheckerStatus.JAILED:
        return
    minimum = parameters.get("min_checker_stake", epoch)
    active = checker.self_stake > 0 and checker.self_stake >= minimum
    checker.status = CheckerStatus.ACTIVE if active else CheckerStatus.INACTIVE


def _apply_stake_delta(checker: CheckerNode, delegator_id: int, delta: int, epoch: int) -> None:
    checker.total_stake += delta
    if delegator_id == _operator_account_id(checker):
        checker.self_stake += delta
    _refresh_status(checker, epoch)
    checker.save(update_fields=["total_stake", "self_stake", "status"])


def _pay_rewards(payouts: list[tuple[int, CheckerNode, int]], epoch: int, *, automatic: bool, actor=None):
    """Pay ``(account id, checker, amount)`` from the rewards pool in one
    posting and record the claims."""
    payouts = [p for p in payouts if p[2] > 0]
    if not payouts:
        return None
    pool = ledger.module_account(ModuleAccount.REWARDS_POOL)
    per_account = defaultdict(int)
    for account_id, _, amount in payouts:
        per_account[account_id] += amount
    legs = [ledger.Leg(pool, Bucket.AVAILABLE, -sum(per_account.values()))]
    legs += [ledger.Leg(a, Bucket.AVAILABLE, amt) for a, amt in sorted(per_account.items())]
    names = sorted({c.name for _, c, _ in payouts})
    memo = ("Rewards paid as the position closed: " if automatic else "Rewards claimed: ") + ", ".join(names)
    tx = ledger.post(TxKind.REWARD, legs, memo=memo, meta={"checkers": sorted({c.pk for _, c, _ in payouts})},
                     actor=actor)
    RewardClaim.objects.bulk_create(
        RewardClaim(delegator_id=a, checker=c, amount=amt, epoch=epoch, automatic=automatic, tx=tx)
        for a, c, amt in payouts
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
            ledger.module_account(ModuleAccount.REWARDS_POOL), ledger.module_account(ModuleAccount.DUST), sum(sweeps),
            kind=TxKind.DUST_SWEEP, memo="Staking rewards: rounding remainder to dust", actor=actor,
        )


def _save_states(states) -> None:
    for state in states:
        state.save()


# --- Operators ----------------------------------------------------------------

@retry_atomic  # _serialise() inside takes the chain head first
def activate_checker(
    operator,
    name: str,
    self_stake: int,
    *,
    commission_rate: int = 50_000,
    commission_max_rate: int = 200_000,
    commission_max_change: int | None = None,
    region=None,
    epoch: int | None = None,
) -> CheckerNode:
    """Create ``operator``'s checker and bond ``self_stake`` micro-ATH from
    their wallet as its self-stake (at least ``min_checker_stake``).

    Commission rates are ppm. ``commission_max_rate`` and
    ``commission_max_change`` (per epoch; at most the protocol's
    ``commission_max_change``) are fixed for the checker's lifetime."""
    e = _epoch(epoch)
    name = (name or "").strip()
    _check_amount(self_stake)
    protocol_max_change = parameters.get("commission_max_change", e)
    if commission_max_change is None:
        commission_max_change = protocol_max_change
    if not name:
        raise StakingError("Give the checker a name.")
    if len(name) > 80:
        raise StakingError("The name can have at most 80 characters.")
    if CheckerNode.objects.filter(name__iexact=name).exists():
        raise StakingError(f"A checker called “{name}” already exists; choose another name.")
    for value in (commission_rate, commission_max_rate, commission_max_change):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= PPM:
            raise StakingError("Commission rates are between 0% and 100%.")
    if commission_rate > commission_max_rate:
        raise StakingError(f"The commission ({pct(commission_rate)}) cannot exceed its maximum ({pct(commission_max_rate)}).")
    if commission_max_change > protocol_max_change:
        raise StakingError(f"The maximum commission change per epoch can be at most {pct(protocol_max_change)}.")
    minimum = parameters.get("min_checker_stake", e)
    if self_stake < minimum:
        raise StakingError(f"A checker needs a self-stake of at least {format_uath(minimum)}.")
    with transaction.atomic():
        _serialise()
        wallet_id = open_wallet(operator).pk
        wallet = ledger.lock_accounts([wallet_id])[wallet_id]
        if wallet.available < self_stake:
            raise StakingError(
                f"Your available balance is {format_uath(wallet.available)}; the self-stake needs {format_uath(self_stake)}."
            )
        checker = CheckerNode.objects.create(
            operator=operator, name=name, region=region, status=CheckerStatus.INACTIVE,
            commission_rate=commission_rate, commission_max_rate=commission_max_rate,
            commission_max_change=commission_max_change,
        )
        state = StakingState.objects.create(checker=checker)
        pair = _Pair(wallet.pk, checker, state, [])
        pair.add(self_stake, _bonding_epoch(e))
        ledger.move(wallet, Bucket.AVAILABLE, Bucket.BONDED, self_stake, kind=TxKind.DELEGATE,
                    memo=f"Self-stake for checker {name}", meta={"checker": checker.pk, "epoch": e}, actor=operator)
        _write([pair])
        _apply_stake_delta(checker, wallet.pk, self_stake, e)
    return checker


def _own_checker(user, checker: CheckerNode) -> None:
    if not user or not user.is_authenticated or checker.operator_id != user.pk:
        raise NotAllowed("Only the checker's operator can do that.")


@retry_atomic  # _serialise() inside takes the chain head first
def set_commission(user, checker: CheckerNode, rate: int, *, epoch: int | None = None) -> CheckerNode:
    """Change the commission (ppm): within the checker's maximum, by at most
    its maximum change, once per epoch."""
    e = _epoch(epoch)
    with transaction.atomic():
        _serialise()
        checker = _lock_checkers([checker.pk])[checker.pk]
        _own_checker(user, checker)
        if isinstance(rate, bool) or not isinstance(rate, int) or not 0 <= rate <= PPM:
            raise StakingError("The commission is between 0% and 100%.")
        if rate == checker.commission_rate:
            raise StakingError(f"The commission already is {pct(rate)}.")
        if rate > checker.commission_max_rate:
            raise StakingError(
                f"The commission cannot exceed this checker's maximum of {pct(checker.commission_max_rate)}."
            )
        change = abs(rate - checker.commission_rate)
        if change > checker.commission_max_change:
            raise StakingError(
                f"The commission can change by at most {pct(checker.commission_max_change)} per epoch "
                f"(from {pct(checker.commission_rate)}: between {pct(max(0, checker.commission_rate - checker.commission_max_change))} "
                f"and {pct(min(checker.commission_max_rate, checker.commission_rate + checker.commission_max_change))})."
            )
        if checker.commission_changed_epoch is not None and checker.commission_changed_epoch >= e:
            raise StakingError(f"The commission was already changed in epoch {e}; change it again from epoch {e + 1}.")
        CommissionChange.objects.create(checker=checker, epoch=e, old_rate=checker.commission_rate, new_rate=rate)
        checker.commission_rate = rate
        checker.commission_changed_epoch = e
        checker.save(update_fields=["commission_rate", "commission_changed_epoch"])
    return checker


def jail(checker: CheckerNode, reason: str, *, epoch: int | None = None, duration: int | None = None) -> JailRecord:
    """Jail ``checker`` from ``epoch`` for ``duration`` epochs (default: the
    ``jail_epochs`` parameter). A jailed checker takes no delegations and no
    assignments until its operator unjails it. Jailing a jailed checker
    extends the term if the new one ends later."""
    e = _epoch(epoch)
    length = parameters.get("jail_epochs", e) if duration is None else int(duration)
    with transaction.atomic():
        _serialise()
        checker = _lock_checkers([checker.pk])[checker.pk]
        until = e + length
        if checker.jailed_until_epoch is not None and checker.status == CheckerStatus.JAILED:
            until = max(until, checker.jailed_until_epoch)
        checker.status = CheckerStatus.JAILED
        checker.jailed_until_epoch = until
        checker.save(update_fields=["status", "jailed_until_epoch"])
        return JailRecord.objects.create(checker=checker, epoch=e, until_epoch=until, reason=(reason or "")[:200])


@retry_atomic  # _serialise() inside takes the chain head first
def unjail(user, checker: CheckerNode, *, epoch: int | None = None) -> CheckerNode:
    """The operator releases their checker once its jail time is over. It is
    active again if its self-stake still meets the minimum."""
    e = _epoch(epoch)
    with transaction.atomic():
        _serialise()
        checker = _lock_checkers([checker.pk])[checker.pk]
        _own_checker(user, checker)
        if checker.status != CheckerStatus.JAILED:
            raise StakingError(f"{checker.name} is not jailed.")
        if checker.jailed_until_epoch is not None and e < checker.jailed_until_epoch:
            left = checker.jailed_until_epoch - e
            raise StakingError(
                f"{checker.name} is jailed until epoch {checker.jailed_until_epoch} ({left} epoch{'s' if left != 1 else ''} left)."
            )
        checker.status = CheckerStatus.INACTIVE
        _refresh_status(checker, e)
        checker.save(update_fields=["status"])
        JailRecord.objects.filter(checker=checker, released_epoch__isnull=True).update(released_epoch=e)
    return checker


# --- Delegators -----------------------------------------------------------------

def _check_target(checker: CheckerNode, wallet_id: int, what: str = "delegate to") -> None:
    """Delegations go to active checkers only; an operator may still top up
    its own inactive checker to bring it back."""
    if checker.status == CheckerStatus.JAILED:
        raise StakingError(
            f"{checker.name} is jailed (until epoch {checker.jailed_until_epoch}); you cannot {what} it."
        )
    if checker.status != CheckerStatus.ACTIVE and wallet_id != _operator_account_id(checker):
        raise StakingError(f"{checker.name} is inactive (its self-stake is below the minimum); you cannot {what} it.")


def _check_minimum(amount: int, e: int) -> None:
    minimum = parameters.get("min_delegation", e)
    if amount < minimum:
        raise StakingError(f"The minimum delegation is {format_uath(minimum)}.")


@retry_atomic  # _serialise() inside takes the chain head first
def delegate(user, checker: CheckerNode, amount: int, *, epoch: int | None = None):
    """Bond ``amount`` micro-ATH from ``user``'s available balance to an
    active checker. It earns from the next epoch's distribution on."""
    e = _epoch(epoch)
    _check_amount(amount)
    _check_minimum(amount, e)
    with transaction.atomic():
        _serialise()
        checker = _lock_checkers([checker.pk])[checker.pk]
        wallet_id = open_wallet(user).pk
        wallet = ledger.lock_accounts([wallet_id])[wallet_id]
        _check_target(checker, wallet.pk)
        if wallet.available < amount:
            raise StakingError(
                f"You have {format_uath(wallet.available)} available; you cannot delegate {format_uath(amount)}."
            )
        state = _lock_state(checker)
        pair = _load_pairs(checker, state, [wallet.pk])[wallet.pk]
        pair.settle({})
        pair.add(amount, _bonding_epoch(e))
        tx = ledger.move(wallet, Bucket.AVAILABLE, Bucket.BONDED, amount, kind=TxKind.DELEGATE,
                         memo=f"Delegated to {checker.name}", meta={"checker": checker.pk, "epoch": e}, actor=user)
        _write([pair])
        state.save()
        _apply_stake_delta(checker, wallet.pk, amount, e)
    return tx


def _check_held(pair: _Pair, amount: int, checker: CheckerNode) -> None:
    if pair.total == 0:
        raise StakingError(f"You have nothing delegated to {checker.name}.")
    if amount > pair.total:
        raise StakingError(
            f"You have {format_uath(pair.total)} delegated to {checker.name}; you cannot move {format_uath(amount)}."
        )


@retry_atomic  # _serialise() inside takes the chain head first
def undelegate(user, checker: CheckerNode, amount: int, *, epoch: int | None = None) -> UnbondingEntry:
    """Start unbonding ``amount``: it leaves the checker now, stays slashable
    for the checker's earlier infractions, and returns to available after
    ``unbonding_epochs``. Closing a position pays its rewards."""
    e = _epoch(epoch)
    _check_amount(amount)
    with transaction.atomic():
        _serialise()
        checker = _lock_checkers([checker.pk])[checker.pk]
        wallet = open_wallet(user)
        state = _lock_state(checker)
        pair = _load_pairs(checker, state, [wallet.pk])[wallet.pk]
        _check_held(pair, amount, checker)
        pair.settle({})
        payout = pair.take(amount)
        maturity = e + parameters.get("unbonding_epochs", e)
        tx = ledger.move(wallet, Bucket.BONDED, Bucket.UNBONDING, amount, kind=TxKind.UNDELEGATE,
                         memo=f"Undelegated from {checker.name}; available from epoch {maturity}",
                         meta={"checker": checker.pk, "epoch": e, "maturity_epoch": maturity}, actor=user)
        entry = UnbondingEntry.objects.create(
            delegator=wallet, checker=checker, initial_amount=amount, amount=amount, creation_epoch=e,
            maturity_epoch=maturity, tx=tx,
        )
        _write([pair])
        _pay_rewards([(wallet.pk, checker, payout)], e, automatic=True, actor=user)
        _sweep_dust([state], actor=user)
        state.save()
        _apply_stake_delta(checker, wallet.pk, -amount, e)
    return entry


@retry_atomic  # _serialise() inside takes the chain head first
def redelegate(user, src: CheckerNode, dst: CheckerNode, amount: int, *, epoch: int | None = None) -> Redelegation:
    """Move bonded stake from ``src`` to an active ``dst`` without unbonding.
    It earns at ``dst`` from the next epoch on; until it matures
    (``unbonding_epochs``) it answers for ``src``'s earlier infractions and
    cannot be redelegated again."""
    e = _epoch(epoch)
    _check_amount(amount)
    if src.pk == dst.pk:
        raise StakingError("Choose a different checker to move to.")
    with transaction.atomic():
        _serialise()
        locked = _lock_checkers([src.pk, dst.pk])
        src, dst = locked[src.pk], locked[dst.pk]
        wallet = open_wallet(user)
        _check_target(dst, wallet.pk, "redelegate to")
        src_state, dst_state = _lock_state(src), _lock_state(dst)
        src_pair = _load_pairs(src, src_state, [wallet.pk])[wallet.pk]
        _check_held(src_pair, amount, src)
        if amount != src_pair.total:
            _check_minimum(amount, e)
        arriving = (
            Redelegation.objects.filter(delegator=wallet, dst=src, maturity_epoch__gt=e)
            .order_by("-maturity_epoch").values_list("maturity_epoch", flat=True).first()
        )
        if arriving is not None:
            raise StakingError(
                f"Stake you redelegated to {src.name} can move on from epoch {arriving}, once that redelegation matures."
            )
        dst_pair = _load_pairs(dst, dst_state, [wallet.pk])[wallet.pk]
        src_pair.settle({})
        dst_pair.settle({})
        payout = src_pair.take(amount)
        dst_pair.add(amount, _bonding_epoch(e))
        _write([src_pair, dst_pair])
        red = Redelegation.objects.create(
            delegator=wallet, src=src, dst=dst, amount=amount, creation_epoch=e,
            maturity_epoch=e + parameters.get("unbonding_epochs", e),
        )
        _pay_rewards([(wallet.pk, src, payout)], e, automatic=True, actor=user)
        _sweep_dust([src_state], actor=user)
        _save_states([src_state, dst_state])
        _apply_stake_delta(src, wallet.pk, -amount, e)
        _apply_stake_delta(dst, wallet.pk, amount, e)
    return red


@retry_atomic  # _serialise() inside takes the chain head first
def claim_rewards(user, checker: CheckerNode | None = None, *, epoch: int | None = None) -> int:
    """Pay ``user``'s pending rewards (from one checker, or all) to their
    available balance in one posting. Returns the micro-ATH paid."""
    e = _epoch(epoch)
    with transaction.atomic():
        _serialise()
        wallet = open_wallet(user)
        ids = [checker.pk] if checker is not None else list(
            Delegation.objects.filter(delegator=wallet).values_list("checker_id", flat=True).distinct()
        )
        if not ids:
            raise StakingError("You have no delegations.")
        checkers = _lock_checkers(ids)
        payouts, states = [], []
        for checker_id in sorted(checkers):
            c = checkers[checker_id]
            state = _lock_state(c)
            pair = _load_pairs(c, state, [wallet.pk])[wallet.pk]
            paid = pair.claim({})
            _write([pair])
            states.append(state)
            payouts.append((wallet.pk, c, paid))
        total = sum(p[2] for p in payouts)
        if not total:
            raise StakingError("You have no rewards to claim yet.")
        _pay_rewards(payouts, e, automatic=False, actor=user)
        _save_states(states)
    return total


# --- Settlement -----------------------------------------------------------------

def distribute(checker: CheckerNode, amount: int, epoch: int, source_account: Account, *, memo: str = "", actor=None) -> RewardPeriod:
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
        _serialise()
        checkers = _lock_checkers(rewards)
        have = set(StakingState.objects.filter(checker_id__in=list(checkers)).values_list("checker_id", flat=True))
        StakingState.objects.bulk_create([StakingState(checker_id=c) for c in checkers if c not in have])
        states = {s.checker_id: s for s in StakingState.objects.select_for_update().filter(checker_id__in=list(checkers)).order_by("pk")}
        not_yet = dict(
            PendingStake.objects.filter(checker_id__in=list(checkers), epoch__gte=epoch).order_by()
            .values("checker_id").annotate(s=Sum("amount")).values_list("checker_id", "s")
        )
        operator_wallets = dict(
            Account.objects.filter(owner_id__in={c.operator_id for c in checkers.values()}).values_list("owner_id", "pk")
        )
        refused: dict[int, StakingError] = {}
        paid: dict[int, tuple] = {}
        legs_commission: dict[int, int] = defaultdict(int)
        to_pool = to_dust = total = 0
        for checker_id in sorted(checkers):
            checker, state, amount = checkers[checker_id], states[checker_id], rewards[checker_id]
            if state.last_epoch is not None and epoch <= state.last_epoch:
                refused[checker_id] = AlreadyDistributed(
                    f"{checker.name} was already paid for epoch {state.last_epoch}; rewards go out once per epoch, in order."
                )
                continue
            eligible = max(0, checker.total_stake - (not_yet.get(checker_id) or 0))
            rate = checker.commission_rate
            commission = amount * rate // PPM
            if not eligible:
                # Every lot that backed the round has left since: the earned
                # reward still goes to someone, all of it to the operator
                # (PROTOCOL section 6: never left unpaid in the reserve).
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
            (checker, _, _, commission, share, _, _), = paid.values()
            tx_memo = memo or f"Checker rewards: {checker.name}, epoch {epoch}"
            meta = {"checker": checker.pk, "epoch": epoch, "commission": str(commission), "delegators": str(share)}
        else:
            tx_memo = memo or f"Checker rewards, epoch {epoch}: {len(paid)} checkers"
            meta = {"checkers": len(paid), "epoch": epoch, "commission": str(sum(legs_commission.values())),
                    "delegators": str(to_pool + to_dust)}
        tx = ledger.post(TxKind.REWARD, legs, memo=tx_memo, meta=meta, actor=actor)
        bulk.update_fields(
            [p[1] for p in paid.values()],
            ["period", "last_epoch", "cumulative_ratio", "remainder_scaled", "rewards_outstanding", "rewards_total",
             "commission_total", "dust_total"],
        )
        # Stake bonded up to this epoch earns from now on: its count is done.
        PendingStake.objects.filter(checker_id__in=list(paid), epoch__lte=epoch).delete()
        periods = RewardPeriod.objects.bulk_create(
            RewardPeriod(
                checker=checker, period=state.period, epoch=epoch, reward=amount, commission=commission,
                delegators_share=share, eligible_stake=eligible, commission_rate=rate,
                cumulative_ratio=state.cumulative_ratio, tx=tx,
            )
            for checker, state, amount, commission, share, eligible, rate in paid.values()
        )
        return {p.checker_id: p for p in periods}, refused



def mature_unbonding(epoch: int | None = None) -> tuple[int, int]:
    """Return every unbonding entry that matured by ``epoch`` to its owner's
    available balance, in one posting. Idempotent. Returns (entries, uATH)."""
    e = _epoch(epoch)
    with transaction.atomic():
        _serialise()
        # The chain-head lock taken above already keeps other writers out;
        # PostgreSQL refuses FOR UPDATE on the aggregate anyway.
        due = UnbondingEntry.objects.filter(matured_epoch__isnull=True, maturity_epoch__lte=e)
        per_account = dict(due.order_by().values("delegator_id").annotate(s=Sum("amount")).values_list("delegator_id", "s"))
        count = due.count()
        if not count:
            return 0, 0
        legs = []
        for account_id, amount in sorted(per_account.items()):
            if amount:
                legs += [ledger.Leg(account_id, Bucket.UNBONDING, -amount), ledger.Leg(account_id, Bucket.AVAILABLE, amount)]
        tx = None
        if legs:
            tx = ledger.post(TxKind.UNBOND_MATURE, legs, memo=f"Unbonding matured by epoch {e}", meta={"epoch": e})
        due.update(matured_epoch=e, matured_tx=tx)
        return count, sum(per_account.values())


def slash_checker(checker: CheckerNode, fraction_ppm: int, infraction_epoch: int, reason: str, *,
                  epoch: int | None = None, actor=None) -> SlashEvent:
    """Slash ``fraction_ppm`` of everything that backed ``checker`` at
    ``infraction_epoch``: its bonded stake (each delegator, the operator
    included, loses ``stake x fraction`` rounded down), its unbonding entries
    that began at or after the infraction, and stake redelegated away from it
    since then (taken at the destination). All of it goes to the burn account
    in one posting; the event records who lost what."""
    e = _epoch(epoch)
    if isinstance(fraction_ppm, bool) or not isinstance(fraction_ppm, int) or not 0 < fraction_ppm <= PPM:
        raise StakingError("The slash fraction is between 1 ppm and 100%.")
    infraction_epoch = int(infraction_epoch)
    if infraction_epoch > e:
        raise StakingError("The infraction cannot be in the future.")
    with transaction.atomic():
        _serialise()
        reds = list(
            Redelegation.objects.select_for_update()
            .filter(src=checker, creation_epoch__gte=infraction_epoch, maturity_epoch__gt=e)
            .order_by("id")
        )
        checkers = _lock_checkers([checker.pk] + [r.dst_id for r in reds])
        checker = checkers[checker.pk]
        states = {cid: _lock_state(c) for cid, c in sorted(checkers.items())}
        cache: dict = {}
        impacts: list[SlashImpact] = []
        losses = defaultdict(lambda: defaultdict(int))  # account -> bucket -> uATH
        stake_delta = defaultdict(lambda: defaultdict(int))  # checker -> account -> uATH
        payouts = []
        pairs = _load_pairs(checker, states[checker.pk])
        touched = []
        for delegator_id, pair in sorted(pairs.items()):
            cut = pair.total * fraction_ppm // PPM
            if not cut:
                continue
            pair.settle(cache)
            payouts.append((delegator_id, checker, pair.take(cut)))
            touched.append(pair)
            losses[delegator_id][Bucket.BONDED] += cut
            stake_delta[checker.pk][delegator_id] -= cut
            impacts.append(SlashImpact(delegator_id=delegator_id, source=SlashImpact.Source.BONDED, amount=cut,
                                       checker=checker))
        dst_pairs: dict[tuple[int, int], _Pair] = {}
        for red in reds:
            key = (red.delegator_id, red.dst_id)
            if key not in dst_pairs:
                dst = checkers[red.dst_id]
                dst_pairs[key] = _load_pairs(dst, states[dst.pk], [red.delegator_id])[red.delegator_id]
                dst_pairs[key].settle(cache)
            pair = dst_pairs[key]
            cut = min(red.amount * fraction_ppm // PPM, pair.total)
            if not cut:
                continue
            payouts.append((red.delegator_id, pair.checker, pair.take(cut)))
            losses[red.delegator_id][Bucket.BONDED] += cut
            stake_delta[red.dst_id][red.delegator_id] -= cut
            impacts.append(SlashImpact(delegator_id=red.delegator_id, source=SlashImpact.Source.REDELEGATED,
                                       amount=cut, redelegation=red, checker=pair.checker))
        entries = list(
            UnbondingEntry.objects.select_for_update()
            .filter(checker=checker, creation_epoch__gte=infraction_epoch, matured_epoch__isnull=True)
            .order_by("id")
        )
        cut_entries = []
        for entry in entries:
            cut = entry.amount * fraction_ppm // PPM
            if not cut:
                continue
            entry.amount -= cut
            cut_entries.append(entry)
            losses[entry.delegator_id][Bucket.UNBONDING] += cut
            impacts.append(SlashImpact(delegator_id=entry.delegator_id, source=SlashImpact.Source.UNBONDING,
                                       amount=cut, unbonding_entry=entry, checker=checker))

        by_source = defaultdict(int)
        for impact in impacts:
            by_source[impact.source] += impact.amount
        total = sum(by_source.values())
        tx = None
        if total:
            legs = [
                ledger.Leg(account_id, bucket, -amount)
                for account_id, buckets in sorted(losses.items())
                for bucket, amount in sorted(buckets.items())
            ]
            legs.append(ledger.Leg(ledger.module_account(ModuleAccount.BURN), Bucket.AVAILABLE, total))
            tx = ledger.post(TxKind.SLASH, legs, memo=f"Slash of {checker.name}: {pct(fraction_ppm)}, {reason}"[:200],
                             meta={"checker": checker.pk, "fraction_ppm": fraction_ppm,
                                   "infraction_epoch": infraction_epoch}, actor=actor)
        _write(touched + list(dst_pairs.values()))
        bulk.update_fields(cut_entries, ["amount"])
        event = SlashEvent.objects.create(
            checker=checker, fraction_ppm=fraction_ppm, infraction_epoch=infraction_epoch, epoch=e,
            reason=(reason or "")[:200], bonded_amount=by_source[SlashImpact.Source.BONDED],
            unbonding_amount=by_source[SlashImpact.Source.UNBONDING],
            redelegated_amount=by_source[SlashImpact.Source.REDELEGATED], total_amount=total, tx=tx,
        )
        for impact in impacts:
            impact.slash = event
        SlashImpact.objects.bulk_create(impacts)
        _pay_rewards(payouts, e, automatic=True, actor=actor)
        states[checker.pk].slashed_total += total
        _sweep_dust(list(states.values()), actor=actor)
        _save_states(states.values())
        for checker_id, deltas in stake_delta.items():
            c = checkers[checker_id]
            operator_id = _operator_account_id(c)
            c.total_stake += sum(deltas.values())
            c.self_stake += deltas.get(operator_id, 0)
            _refresh_status(c, e)
            c.save(update_fields=["total_stake", "self_stake", "status"])
    return event


# --- Reading ----------------------------------------------------------------------

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
        .values("dst_id").annotate(m=Max("maturity_epoch")).values_list("dst_id", "m")
    )
    out = []
    for checker_id, group in grouped.items():
        checker = group[0].checker
        state = getattr(checker, "staking", None)
        last = state.last_epoch if state else None
        waiting = [lot for lot in group if not _is_earning(lot.start_epoch, last)]
        out.append(Position(
            checker=checker,
            amount=sum(lot.amount for lot in group),
            earning=sum(lot.amount for lot in group if _is_earning(lot.start_epoch, last)),
            waiting=sum(lot.amount for lot in waiting),
            earns_from_epoch=min((lot.start_epoch for lot in waiting), default=None),
            pending_reward=pending.get(checker_id, 0),
            redelegation_locked_until=locks.get(checker_id),
        ))
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
    state = StakingState.objects.get(checker=checker)
    return state.rewards_outstanding * SCALE - sum(owed_scaled(checker).values())

"""What a token holder does with stake (docs/rules.md §5 and §6):
delegate to a checker, undelegate (unbonding), redelegate without
unbonding, claim rewards; and :func:`mature_unbonding`, which settlement
calls each epoch.

Where the ATH is
    Delegated ATH stays in the delegator's own account: ``bonded`` while it
    backs a checker, ``unbonding`` while an undelegation matures. Unclaimed
    rewards sit in the ``REWARDS_POOL`` module account until claimed, or
    until the position closes, when they are paid automatically.

Each runs in one database transaction that takes the chain head first
(``ledger.lock_head()``), then checkers, then accounts; a refusal raises
:class:`~.errors.StakingError` and changes nothing.
"""

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext, gettext_noop

from apps.accounts.services import open_wallet
from apps.core import ledger, parameters
from apps.core.amounts import display_uath
from apps.core.models import Bucket, CheckerNode, CheckerStatus, TxKind
from apps.core.retry import retry_atomic

from ..models import Delegation, Redelegation, UnbondingEntry
from ._common import (
    _apply_stake_delta,
    _bonding_epoch,
    _check_amount,
    _epoch,
    _lock_checkers,
    _lock_state,
    _operator_account_id,
    _save_states,
)
from .errors import StakingError
from .rewards import _load_pairs, _Pair, _pay_rewards, _sweep_dust, _write

# The verbs _check_target names, for translation.
_VERBS = [gettext_noop("delegate to"), gettext_noop("redelegate to")]


def _check_target(checker: CheckerNode, wallet_id: int, what: str = "delegate to") -> None:
    """Delegations go to active checkers only; an operator may still top up
    its own inactive checker to bring it back."""
    if checker.status == CheckerStatus.JAILED:
        raise StakingError(
            gettext("%(name)s is jailed (until epoch %(jailed_until_epoch)s); you cannot %(what)s it.")
            % {"name": checker.name, "jailed_until_epoch": checker.jailed_until_epoch, "what": gettext(what)}
        )
    if checker.status != CheckerStatus.ACTIVE and wallet_id != _operator_account_id(checker):
        raise StakingError(
            gettext("%(name)s is inactive (its self-stake is below the minimum); you cannot %(what)s it.")
            % {"name": checker.name, "what": gettext(what)}
        )


def _check_minimum(amount: int, e: int) -> None:
    minimum = parameters.get("min_delegation", e)
    if amount < minimum:
        raise StakingError(gettext("The minimum delegation is %(minimum)s.") % {"minimum": display_uath(minimum)})


def _bond(pair: _Pair, wallet, amount: int, e: int, *, memo: str, actor):
    """Bond ``amount`` from ``wallet``'s available balance as a new lot of
    ``pair`` (dated by :func:`_bonding_epoch`), posted as a delegation, and
    write the pair. The caller updates the checker's stake."""
    start = _bonding_epoch(e)
    pair.add(amount, start)
    tx = ledger.move(
        wallet,
        Bucket.AVAILABLE,
        Bucket.BONDED,
        amount,
        kind=TxKind.DELEGATE,
        memo=memo,
        # start_epoch: the lot earns from distributions for later epochs, so
        # the ledger alone says which stake shared each epoch's reward.
        meta={"checker": pair.checker.pk, "epoch": e, "start_epoch": start},
        actor=actor,
    )
    _write([pair])
    return tx


@retry_atomic  # ledger.lock_head() inside takes the chain head first
def delegate(user, checker: CheckerNode, amount: int, *, epoch: int | None = None):
    """Bond ``amount`` micro-ATH from ``user``'s available balance to an
    active checker. It earns from the next epoch's distribution on."""
    e = _epoch(epoch)
    _check_amount(amount)
    _check_minimum(amount, e)
    with transaction.atomic():
        ledger.lock_head()
        checker = _lock_checkers([checker.pk])[checker.pk]
        wallet_id = open_wallet(user).pk
        wallet = ledger.lock_accounts([wallet_id])[wallet_id]
        _check_target(checker, wallet.pk)
        if wallet.available < amount:
            raise StakingError(
                gettext("You have %(available)s available; you cannot delegate %(amount)s.")
                % {"available": display_uath(wallet.available), "amount": display_uath(amount)}
            )
        state = _lock_state(checker)
        pair = _load_pairs(checker, state, [wallet.pk])[wallet.pk]
        pair.settle({})
        tx = _bond(pair, wallet, amount, e, memo=f"Delegated to {checker.name}", actor=user)
        state.save()
        _apply_stake_delta(checker, wallet.pk, amount, e)
    return tx


def _check_held(pair: _Pair, amount: int, checker: CheckerNode) -> None:
    _check_held_total(pair.total, amount, checker)


def _check_held_total(total: int, amount: int, checker: CheckerNode) -> None:
    if total == 0:
        raise StakingError(gettext("You have nothing delegated to %(name)s.") % {"name": checker.name})
    if amount > total:
        raise StakingError(
            gettext("You have %(total)s delegated to %(name)s; you cannot move %(amount)s.")
            % {"total": display_uath(total), "name": checker.name, "amount": display_uath(amount)}
        )


def _check_redelegation(wallet_id: int, src: CheckerNode, dst: CheckerNode, amount: int, held: int, e: int) -> None:
    """Why moving ``amount`` of the ``held`` stake from ``src`` to ``dst`` is
    refused, if it is (the move itself and its review ask the same)."""
    _check_target(dst, wallet_id, "redelegate to")
    _check_held_total(held, amount, src)
    if amount != held:
        _check_minimum(amount, e)
    arriving = (
        Redelegation.objects.filter(delegator_id=wallet_id, dst=src, maturity_epoch__gt=e)
        .order_by("-maturity_epoch")
        .values_list("maturity_epoch", flat=True)
        .first()
    )
    if arriving is not None:
        raise StakingError(
            gettext(
                "Stake you redelegated to %(name)s can move on from epoch %(arriving)s, once that redelegation matures."
            )
            % {"name": src.name, "arriving": arriving}
        )


@retry_atomic  # ledger.lock_head() inside takes the chain head first
def undelegate(user, checker: CheckerNode, amount: int, *, epoch: int | None = None) -> UnbondingEntry:
    """Start unbonding ``amount``: it leaves the checker now, stays slashable
    for the checker's earlier infractions, and returns to available after
    ``unbonding_epochs``. Closing a position pays its rewards."""
    e = _epoch(epoch)
    _check_amount(amount)
    with transaction.atomic():
        ledger.lock_head()
        checker = _lock_checkers([checker.pk])[checker.pk]
        wallet = open_wallet(user)
        state = _lock_state(checker)
        pair = _load_pairs(checker, state, [wallet.pk])[wallet.pk]
        _check_held(pair, amount, checker)
        pair.settle({})
        payout = pair.take(amount)
        maturity = e + parameters.get("unbonding_epochs", e)
        tx = ledger.move(
            wallet,
            Bucket.BONDED,
            Bucket.UNBONDING,
            amount,
            kind=TxKind.UNDELEGATE,
            memo=f"Undelegated from {checker.name}; available from epoch {maturity}",
            meta={"checker": checker.pk, "epoch": e, "maturity_epoch": maturity},
            actor=user,
        )
        entry = UnbondingEntry.objects.create(
            delegator=wallet,
            checker=checker,
            initial_amount=amount,
            amount=amount,
            creation_epoch=e,
            maturity_epoch=maturity,
            tx=tx,
        )
        _write([pair])
        _pay_rewards([(wallet.pk, checker, payout, pair.paid_inputs)], e, automatic=True, actor=user)
        _sweep_dust([state], actor=user)
        state.save()
        _apply_stake_delta(checker, wallet.pk, -amount, e)
    return entry


@retry_atomic  # ledger.lock_head() inside takes the chain head first
def redelegate(user, src: CheckerNode, dst: CheckerNode, amount: int, *, epoch: int | None = None) -> Redelegation:
    """Move bonded stake from ``src`` to an active ``dst`` without unbonding.
    It earns at ``dst`` from the next epoch on; until it matures
    (``unbonding_epochs``) it answers for ``src``'s earlier infractions and
    cannot be redelegated again."""
    e = _epoch(epoch)
    _check_amount(amount)
    if src.pk == dst.pk:
        raise StakingError(gettext("Choose a different checker to move to."))
    with transaction.atomic():
        ledger.lock_head()
        locked = _lock_checkers([src.pk, dst.pk])
        src, dst = locked[src.pk], locked[dst.pk]
        wallet = open_wallet(user)
        src_state, dst_state = _lock_state(src), _lock_state(dst)
        src_pair = _load_pairs(src, src_state, [wallet.pk])[wallet.pk]
        _check_redelegation(wallet.pk, src, dst, amount, src_pair.total, e)
        dst_pair = _load_pairs(dst, dst_state, [wallet.pk])[wallet.pk]
        src_pair.settle({})
        dst_pair.settle({})
        payout = src_pair.take(amount)
        start = _bonding_epoch(e)
        dst_pair.add(amount, start)
        _write([src_pair, dst_pair])
        maturity = e + parameters.get("unbonding_epochs", e)
        # The stake stays bonded in the same account, so the legs net to
        # zero there: the posting is what puts the move on the public chain
        # (which checker it left, which it backs from when).
        ledger.post(
            TxKind.REDELEGATE,
            [ledger.Leg(wallet.pk, Bucket.BONDED, -amount), ledger.Leg(wallet.pk, Bucket.BONDED, amount)],
            memo=f"Redelegated from {src.name} to {dst.name}",
            meta={"src": src.pk, "dst": dst.pk, "epoch": e, "start_epoch": start, "maturity_epoch": maturity},
            actor=user,
        )
        red = Redelegation.objects.create(
            delegator=wallet,
            src=src,
            dst=dst,
            amount=amount,
            creation_epoch=e,
            maturity_epoch=maturity,
        )
        _pay_rewards([(wallet.pk, src, payout, src_pair.paid_inputs)], e, automatic=True, actor=user)
        _sweep_dust([src_state], actor=user)
        _save_states([src_state, dst_state])
        _apply_stake_delta(src, wallet.pk, -amount, e)
        _apply_stake_delta(dst, wallet.pk, amount, e)
    return red


@retry_atomic  # ledger.lock_head() inside takes the chain head first
def claim_rewards(user, checker: CheckerNode | None = None, *, epoch: int | None = None) -> int:
    """Pay ``user``'s pending rewards (from one checker, or all) to their
    available balance in one posting. Returns the micro-ATH paid."""
    e = _epoch(epoch)
    with transaction.atomic():
        ledger.lock_head()
        wallet = open_wallet(user)
        ids = (
            [checker.pk]
            if checker is not None
            else list(Delegation.objects.filter(delegator=wallet).values_list("checker_id", flat=True).distinct())
        )
        if not ids:
            raise StakingError(gettext("You have no delegations."))
        checkers = _lock_checkers(ids)
        payouts, states = [], []
        for checker_id in sorted(checkers):
            c = checkers[checker_id]
            state = _lock_state(c)
            pair = _load_pairs(c, state, [wallet.pk])[wallet.pk]
            paid = pair.claim({})
            _write([pair])
            states.append(state)
            payouts.append((wallet.pk, c, paid, pair.paid_inputs))
        total = sum(p[2] for p in payouts)
        if not total:
            raise StakingError(gettext("You have no rewards to claim yet."))
        _pay_rewards(payouts, e, automatic=False, actor=user)
        _save_states(states)
    return total


def mature_unbonding(epoch: int | None = None) -> tuple[int, int]:
    """Return every unbonding entry that matured by ``epoch`` to its owner's
    available balance, in one posting. Idempotent. Returns (entries, uATH)."""
    e = _epoch(epoch)
    with transaction.atomic():
        ledger.lock_head()
        # The chain-head lock taken above already keeps other writers out;
        # PostgreSQL refuses FOR UPDATE on the aggregate anyway.
        due = UnbondingEntry.objects.filter(matured_epoch__isnull=True, maturity_epoch__lte=e)
        per_account = dict(
            due.order_by().values("delegator_id").annotate(s=Sum("amount")).values_list("delegator_id", "s")
        )
        count = due.count()
        if not count:
            return 0, 0
        legs = []
        for account_id, amount in sorted(per_account.items()):
            if amount:
                legs += [
                    ledger.Leg(account_id, Bucket.UNBONDING, -amount),
                    ledger.Leg(account_id, Bucket.AVAILABLE, amount),
                ]
        tx = None
        if legs:
            tx = ledger.post(TxKind.UNBOND_MATURE, legs, memo=f"Unbonding matured by epoch {e}", meta={"epoch": e})
        due.update(matured_epoch=e, matured_tx=tx)
        return count, sum(per_account.values())

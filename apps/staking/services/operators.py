"""What a checker's operator does (docs/rules.md §5 and §9): activate a
checker with its self-stake, change its commission within the limits fixed
at activation, and unjail it; and :func:`jail`, which settlement calls.

Each runs in one database transaction that takes the chain head first
(``ledger.lock_head()``), then checkers, then accounts, like every other
posting; a refusal raises :class:`~.errors.StakingError` and changes
nothing.
"""

from django.db import transaction

from apps.accounts.services import open_wallet
from apps.core import ledger, parameters
from apps.core.amounts import format_uath
from apps.core.models import CheckerNode, CheckerStatus
from apps.core.retry import retry_atomic

from ..models import CommissionChange, JailRecord, StakingState
from ._common import (
    PPM,
    _apply_stake_delta,
    _check_amount,
    _epoch,
    _lock_checkers,
    _refresh_status,
    pct,
)
from .delegations import _bond
from .errors import NotAllowed, StakingError
from .rewards import _Pair


@retry_atomic  # ledger.lock_head() inside takes the chain head first
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
        raise StakingError(
            f"The commission ({pct(commission_rate)}) cannot exceed its maximum ({pct(commission_max_rate)})."
        )
    if commission_max_change > protocol_max_change:
        raise StakingError(f"The maximum commission change per epoch can be at most {pct(protocol_max_change)}.")
    minimum = parameters.get("min_checker_stake", e)
    if self_stake < minimum:
        raise StakingError(f"A checker needs a self-stake of at least {format_uath(minimum)}.")
    with transaction.atomic():
        ledger.lock_head()
        wallet_id = open_wallet(operator).pk
        wallet = ledger.lock_accounts([wallet_id])[wallet_id]
        if wallet.available < self_stake:
            raise StakingError(
                f"Your available balance is {format_uath(wallet.available)}; the self-stake needs "
                f"{format_uath(self_stake)}."
            )
        checker = CheckerNode.objects.create(
            operator=operator,
            name=name,
            region=region,
            status=CheckerStatus.INACTIVE,
            commission_rate=commission_rate,
            commission_max_rate=commission_max_rate,
            commission_max_change=commission_max_change,
        )
        state = StakingState.objects.create(checker=checker)
        pair = _Pair(wallet.pk, checker, state, [])
        _bond(pair, wallet, self_stake, e, memo=f"Self-stake for checker {name}", actor=operator)
        _apply_stake_delta(checker, wallet.pk, self_stake, e)
    return checker


def _own_checker(user, checker: CheckerNode) -> None:
    if not user or not user.is_authenticated or checker.operator_id != user.pk:
        raise NotAllowed("Only the checker's operator can do that.")


@retry_atomic  # ledger.lock_head() inside takes the chain head first
def set_commission(user, checker: CheckerNode, rate: int, *, epoch: int | None = None) -> CheckerNode:
    """Change the commission (ppm): within the checker's maximum, by at most
    its maximum change, once per epoch."""
    e = _epoch(epoch)
    with transaction.atomic():
        ledger.lock_head()
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
            low = max(0, checker.commission_rate - checker.commission_max_change)
            high = min(checker.commission_max_rate, checker.commission_rate + checker.commission_max_change)
            raise StakingError(
                f"The commission can change by at most {pct(checker.commission_max_change)} per epoch "
                f"(from {pct(checker.commission_rate)}: between {pct(low)} and {pct(high)})."
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
        ledger.lock_head()
        checker = _lock_checkers([checker.pk])[checker.pk]
        until = e + length
        if checker.jailed_until_epoch is not None and checker.status == CheckerStatus.JAILED:
            until = max(until, checker.jailed_until_epoch)
        checker.status = CheckerStatus.JAILED
        checker.jailed_until_epoch = until
        checker.save(update_fields=["status", "jailed_until_epoch"])
        return JailRecord.objects.create(checker=checker, epoch=e, until_epoch=until, reason=(reason or "")[:200])


@retry_atomic  # ledger.lock_head() inside takes the chain head first
def unjail(user, checker: CheckerNode, *, epoch: int | None = None) -> CheckerNode:
    """The operator releases their checker once its jail time is over. It is
    active again if its self-stake still meets the minimum."""
    e = _epoch(epoch)
    with transaction.atomic():
        ledger.lock_head()
        checker = _lock_checkers([checker.pk])[checker.pk]
        _own_checker(user, checker)
        if checker.status != CheckerStatus.JAILED:
            raise StakingError(f"{checker.name} is not jailed.")
        if checker.jailed_until_epoch is not None and e < checker.jailed_until_epoch:
            left = checker.jailed_until_epoch - e
            raise StakingError(
                f"{checker.name} is jailed until epoch {checker.jailed_until_epoch} "
                f"({left} epoch{'s' if left != 1 else ''} left)."
            )
        checker.status = CheckerStatus.INACTIVE
        _refresh_status(checker, e)
        checker.save(update_fields=["status"])
        JailRecord.objects.filter(checker=checker, released_epoch__isnull=True).update(released_epoch=e)
    return checker

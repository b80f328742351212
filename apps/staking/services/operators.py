"""What a checker's operator does (docs/rules.md §5 and §9): activate a
checker with its self-stake, change its commission within the limits fixed
at activation, and unjail it; and :func:`jail`, which settlement calls.

Each runs in one database transaction that takes the chain head first
(``ledger.lock_head()``), then checkers, then accounts, like every other
posting; a refusal raises :class:`~.errors.StakingError` and changes
nothing.
"""

from django.db import transaction
from django.utils.translation import gettext, ngettext

from apps.accounts.services import open_wallet
from apps.core import ledger, parameters
from apps.core.amounts import display_uath
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
        raise StakingError(gettext("Give the checker a name."))
    if len(name) > 80:
        raise StakingError(gettext("The name can have at most 80 characters."))
    if CheckerNode.objects.filter(name__iexact=name).exists():
        raise StakingError(gettext("A checker called “%(name)s” already exists; choose another name.") % {"name": name})
    for value in (commission_rate, commission_max_rate, commission_max_change):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= PPM:
            raise StakingError("Commission rates are between 0% and 100%.")
    if commission_rate > commission_max_rate:
        raise StakingError(
            gettext("The commission (%(pct)s) cannot exceed its maximum (%(pct2)s).")
            % {"pct": pct(commission_rate), "pct2": pct(commission_max_rate)}
        )
    if commission_max_change > protocol_max_change:
        raise StakingError(
            gettext("The maximum commission change per epoch can be at most %(pct)s.")
            % {"pct": pct(protocol_max_change)}
        )
    minimum = parameters.get("min_checker_stake", e)
    if self_stake < minimum:
        raise StakingError(
            gettext("A checker needs a self-stake of at least %(minimum)s.") % {"minimum": display_uath(minimum)}
        )
    with transaction.atomic():
        ledger.lock_head()
        wallet_id = open_wallet(operator).pk
        wallet = ledger.lock_accounts([wallet_id])[wallet_id]
        if wallet.available < self_stake:
            raise StakingError(
                gettext("Your available balance is %(available)s; the self-stake needs %(self_stake)s.")
                % {"available": display_uath(wallet.available), "self_stake": display_uath(self_stake)}
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
            raise StakingError(gettext("The commission already is %(pct)s.") % {"pct": pct(rate)})
        if rate > checker.commission_max_rate:
            raise StakingError(
                gettext("The commission cannot exceed this checker's maximum of %(pct)s.")
                % {"pct": pct(checker.commission_max_rate)}
            )
        change = abs(rate - checker.commission_rate)
        if change > checker.commission_max_change:
            low = max(0, checker.commission_rate - checker.commission_max_change)
            high = min(checker.commission_max_rate, checker.commission_rate + checker.commission_max_change)
            raise StakingError(
                gettext(
                    "The commission can change by at most %(pct)s per epoch (from %(pct2)s: between %(pct3)s and "
                    "%(pct4)s)."
                )
                % {
                    "pct": pct(checker.commission_max_change),
                    "pct2": pct(checker.commission_rate),
                    "pct3": pct(low),
                    "pct4": pct(high),
                }
            )
        if checker.commission_changed_epoch is not None and checker.commission_changed_epoch >= e:
            raise StakingError(
                gettext("The commission was already changed in epoch %(e)s; change it again from epoch %(value)s.")
                % {"e": e, "value": e + 1}
            )
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
            raise StakingError(gettext("%(name)s is not jailed.") % {"name": checker.name})
        if checker.jailed_until_epoch is not None and e < checker.jailed_until_epoch:
            left = checker.jailed_until_epoch - e
            raise StakingError(
                ngettext(
                    "%(name)s is jailed until epoch %(until)s (%(left)s epoch left).",
                    "%(name)s is jailed until epoch %(until)s (%(left)s epochs left).",
                    left,
                )
                % {"name": checker.name, "until": checker.jailed_until_epoch, "left": left}
            )
        checker.status = CheckerStatus.INACTIVE
        _refresh_status(checker, e)
        checker.save(update_fields=["status"])
        JailRecord.objects.filter(checker=checker, released_epoch__isnull=True).update(released_epoch=e)
    return checker

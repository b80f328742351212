"""What a delegation, an undelegation or a redelegation would do, in numbers, before the
person confirms it: refused for the same reasons as the action itself, and
moving nothing. The review pages show these figures (docs/rules.md §5, §6)."""

from django.utils.translation import gettext

from apps.accounts.services import open_wallet
from apps.core import epochs, parameters
from apps.core.amounts import format_uath
from apps.core.models import CheckerNode

from ..models import Delegation
from ._common import PPM, _bonding_epoch, _check_amount, _epoch
from .delegations import _check_minimum, _check_redelegation, _check_target
from .errors import StakingError

# Delegating and undelegating are ledger moves inside the delegator's own
# wallet: no network fee is charged for either.
STAKING_FEE = 0


def _epoch_start(number: int):
    try:
        return epochs.epoch(number).start
    except LookupError:
        return None


def _slash_rules(amount: int, e: int) -> dict:
    """What a checker's penalty would take from ``amount`` of stake behind it."""
    rate = parameters.get("misreport_slash", e)
    return {
        "slash_ppm": rate,
        "slash_amount": amount * rate // PPM,
        "jail_epochs": parameters.get("jail_epochs", e),
        "jail_window_epochs": parameters.get("jail_window_epochs", e),
        "jail_min": parameters.get("misreport_jail_min", e),
        "jail_share_ppm": parameters.get("misreport_jail_share", e),
    }


def preview_delegate(user, checker: CheckerNode, amount: int, *, epoch: int | None = None) -> dict:
    e = _epoch(epoch)
    _check_amount(amount)
    _check_minimum(amount, e)
    wallet = open_wallet(user)
    _check_target(checker, wallet.pk)
    if wallet.available < amount + STAKING_FEE:
        raise StakingError(
            gettext("You have %(available)s available; you cannot delegate %(amount)s.")
            % {"available": format_uath(wallet.available), "amount": format_uath(amount)}
        )
    unbonding = parameters.get("unbonding_epochs", e)
    earns_from = _bonding_epoch(e) + 1
    return {
        "checker": checker,
        "amount": amount,
        "fee": STAKING_FEE,
        "available": wallet.available,
        "available_after": wallet.available - amount - STAKING_FEE,
        "epoch": e,
        "earns_from": earns_from,
        "unbonding_epochs": unbonding,
        # Undelegating right away would leave the stake unbonding until this epoch.
        "earliest_back": e + unbonding,
        "earliest_back_at": _epoch_start(e + unbonding),
        **_slash_rules(amount, e),
    }


def preview_undelegate(user, checker: CheckerNode, amount: int, *, epoch: int | None = None) -> dict:
    from .. import queries

    e = _epoch(epoch)
    _check_amount(amount)
    wallet = open_wallet(user)
    held = sum(Delegation.objects.filter(delegator=wallet, checker=checker).values_list("amount", flat=True))
    if held == 0:
        raise StakingError(gettext("You have nothing delegated to %(name)s.") % {"name": checker.name})
    if amount > held:
        raise StakingError(
            gettext("You have %(held)s delegated to %(name)s; you cannot move %(amount)s.")
            % {"held": format_uath(held), "name": checker.name, "amount": format_uath(amount)}
        )
    maturity = e + parameters.get("unbonding_epochs", e)
    return {
        "checker": checker,
        "amount": amount,
        "fee": STAKING_FEE,
        "held": held,
        "held_after": held - amount,
        # Closing or shrinking a position pays its pending rewards.
        "rewards_paid": queries.pending_rewards(wallet, checker),
        "epoch": e,
        "maturity": maturity,
        "maturity_at": _epoch_start(maturity),
        "unbonding_epochs": maturity - e,
        **_slash_rules(amount, e),
    }


def preview_redelegate(user, src: CheckerNode, dst: CheckerNode, amount: int, *, epoch: int | None = None) -> dict:
    from .. import queries

    e = _epoch(epoch)
    _check_amount(amount)
    if src.pk == dst.pk:
        raise StakingError(gettext("Choose a different checker to move to."))
    wallet = open_wallet(user)
    held = sum(Delegation.objects.filter(delegator=wallet, checker=src).values_list("amount", flat=True))
    _check_redelegation(wallet.pk, src, dst, amount, held, e)
    maturity = e + parameters.get("unbonding_epochs", e)
    return {
        "checker": src,
        "dst": dst,
        "amount": amount,
        "fee": STAKING_FEE,
        "held": held,
        "held_after": held - amount,
        # Moving stake pays the position's pending rewards at the checker it leaves.
        "rewards_paid": queries.pending_rewards(wallet, src),
        "epoch": e,
        "earns_from": _bonding_epoch(e) + 1,
        # Until then it answers for the old checker's earlier faults too and cannot move again.
        "maturity": maturity,
        "maturity_at": _epoch_start(maturity),
        "unbonding_epochs": maturity - e,
        **_slash_rules(amount, e),
    }

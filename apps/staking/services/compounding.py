"""Auto-compound (docs/rules.md §6): a delegator may ask that each settled
epoch their pending rewards from a checker be claimed and delegated back to
it. Settlement runs :func:`compound` after the epoch's rewards; each
position compounds through the same ``claim_rewards`` and ``delegate`` a
person would use, so every rule (minimum delegation, an active checker) and
every posting is the ordinary one."""

from django.utils.translation import gettext

from apps.accounts.services import open_wallet
from apps.core import parameters
from apps.core.models import CheckerNode, CheckerStatus

from ..models import AutoCompound, Delegation
from .delegations import claim_rewards, delegate
from .errors import StakingError


def set_auto_compound(user, checker: CheckerNode, on: bool) -> bool:
    """Turn auto-compound on or off for ``user``'s position with ``checker``."""
    wallet = open_wallet(user)
    if on:
        if not Delegation.objects.filter(delegator=wallet, checker=checker).exists():
            raise StakingError(gettext("Delegate to %(name)s first.") % {"name": checker.name})
        AutoCompound.objects.get_or_create(delegator=wallet, checker=checker)
    else:
        AutoCompound.objects.filter(delegator=wallet, checker=checker).delete()
    return on


def is_on(user, checker: CheckerNode) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return AutoCompound.objects.filter(delegator__owner=user, checker=checker).exists()


def compound(epoch: int) -> int:
    """Claim and re-delegate every opted-in position whose pending rewards
    reach the minimum delegation, to an active checker; returns how many
    compounded. Smaller rewards wait for a later epoch."""
    from .. import queries

    minimum = parameters.get("min_delegation", epoch)
    done = 0
    choices = AutoCompound.objects.filter(checker__status=CheckerStatus.ACTIVE).select_related(
        "delegator__owner", "checker"
    )
    for choice in choices.order_by("id"):
        if queries.pending_rewards(choice.delegator, choice.checker) < minimum:
            continue
        user = choice.delegator.owner
        paid = claim_rewards(user, choice.checker, epoch=epoch)
        if paid >= minimum:
            delegate(user, choice.checker, paid, epoch=epoch)
            done += 1
    return done

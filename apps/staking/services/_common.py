"""What every staking service shares: units, the epoch default, row locks in
the one lock order, the dating of new stake and the bookkeeping of a
checker's stake and status.

Kept apart so operators, delegations, rewards and slashing each import the
same rules instead of their own copies.
"""

from django.utils.translation import gettext

from apps.accounts.services import open_wallet
from apps.core import epochs, parameters
from apps.core.models import CheckerNode, CheckerStatus
from apps.monitoring import assignment

from ..models import StakingState
from .errors import StakingError

PPM = 1_000_000
# Reward index precision. Index rounding costs a delegation less than
# stake / SCALE uATH per distribution: < 10**-10 uATH for the whole supply.
SCALE = 10**27


def pct(ppm: int) -> str:
    return parameters.definition("commission_max_change").format(ppm)


def _epoch(epoch: int | None) -> int:
    return epochs.current_number() if epoch is None else int(epoch)


def _lock_checkers(ids) -> dict[int, CheckerNode]:
    """Lock checkers by id, after the chain head (``ledger.lock_head()``) and
    before any account, so staking locks rows in the ledger's one order:
    chain head, checkers, accounts."""
    ids = sorted(set(ids))
    found = {c.pk: c for c in CheckerNode.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
    if len(found) != len(ids):
        raise StakingError(gettext("No such checker."))
    return found


def _lock_state(checker: CheckerNode) -> StakingState:
    StakingState.objects.get_or_create(checker=checker)
    return StakingState.objects.select_for_update().get(checker=checker)


def _save_states(states) -> None:
    for state in states:
        state.save()


def _operator_account_id(checker: CheckerNode) -> int:
    return open_wallet(checker.operator).pk


def _bonding_epoch(e: int) -> int:
    """The epoch a lot bonded now in epoch ``e`` is dated to. The stake that
    shares an epoch's reward is the stake bonded when its assignment round
    was fixed (docs/rules.md §6): stake bonded before the scheduler fixed
    round ``e`` (at genesis, or while the scheduler was down) earns from
    ``e`` itself, so it is dated ``e - 1``; stake bonded after earns from
    ``e + 1``."""
    return e if assignment.round_fixed(e) else e - 1


def _check_amount(amount) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise StakingError(gettext("Amounts are whole micro-ATH."))
    if amount <= 0:
        raise StakingError(gettext("The amount must be more than zero."))
    return amount


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

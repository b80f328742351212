"""Checker staking and delegation (docs/rules.md §5, §6 and §9): every
action that changes stake, rewards or a checker's standing.

Plain functions that views, the API, management commands and settlement
call. Every movement of ATH goes through :mod:`apps.core.ledger` inside one
database transaction; a refused action raises :class:`StakingError` (with a
message for the person) and changes nothing. Reading (positions, pending
rewards, checker figures) is :mod:`apps.staking.queries`.

Where the ATH is
    Delegated ATH stays in the delegator's own account: ``bonded`` while it
    backs a checker, ``unbonding`` while an undelegation matures. Unclaimed
    rewards sit in the ``REWARDS_POOL`` module account; commission is paid to
    the operator's wallet at distribution; slashes go to ``BURN``; the
    rounding remainder of rewards goes to ``DUST``.

By concern:

* :mod:`.operators`: activate a checker, set its commission, jail, unjail;
* :mod:`.delegations`: delegate, undelegate, redelegate, claim rewards,
  mature unbonding entries;
* :mod:`.rewards`: distribute an epoch's rewards through the lazy (F1)
  index, and the rounding rules (see its docstring);
* :mod:`.slashing`: slash a checker and everything that backed it;
* :mod:`.errors` and :mod:`._common`: what they share.

Settlement calls :func:`distribute`, :func:`mature_unbonding`,
:func:`slash_checker` and :func:`jail`; every service that depends on the
epoch takes ``epoch=`` (default: the current one) so settlement can act for
the epoch it is settling and tests can step epochs.

Lock order: each service takes the chain head first (``ledger.lock_head()``),
then checkers by id, then accounts by id, so staking never deadlocks with
settlement or wallets.
"""

from ._common import SCALE, pct
from .compounding import compound, set_auto_compound
from .delegations import claim_rewards, delegate, mature_unbonding, redelegate, undelegate
from .errors import AlreadyDistributed, NotAllowed, StakingError
from .operators import activate_checker, jail, set_commission, unjail
from .previews import preview_delegate, preview_redelegate, preview_undelegate
from .rewards import distribute, distribute_many
from .slashing import slash_checker

__all__ = [
    "SCALE",
    "AlreadyDistributed",
    "NotAllowed",
    "StakingError",
    "activate_checker",
    "claim_rewards",
    "compound",
    "delegate",
    "distribute",
    "distribute_many",
    "jail",
    "mature_unbonding",
    "pct",
    "preview_delegate",
    "preview_redelegate",
    "preview_undelegate",
    "redelegate",
    "set_auto_compound",
    "set_commission",
    "slash_checker",
    "undelegate",
    "unjail",
]

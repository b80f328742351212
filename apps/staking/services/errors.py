"""Why a staking action was refused.

Every staking service raises one of these before it writes anything, so a
refused action changes nothing. They live apart from the services so that
views, the API and settlement can catch them without caring which service
raised them (all are re-exported by :mod:`apps.staking.services`).
"""

from apps.core.errors import Conflict, DomainError
from apps.core.errors import NotAllowed as _NotAllowed


class StakingError(DomainError):
    """A staking action that was refused; nothing changed. The message is
    for the person who asked."""


class NotAllowed(StakingError, _NotAllowed):
    """The person may not act on this checker or delegation."""


class AlreadyDistributed(StakingError, Conflict):
    """``distribute`` was already called for this checker and epoch."""

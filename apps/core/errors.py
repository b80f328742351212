"""What a refused domain action means, and the one table that turns that
meaning into an HTTP status.

Every service error derives from :class:`DomainError` (still a ``ValueError``,
so ``except ValueError`` keeps working) and says what it means through its
class: a plain ``DomainError`` family is a refusal (400); mixing in
:class:`Conflict`, :class:`NotAllowed` or :class:`NotFound` changes only the
meaning, never the family, so ``except StakingError`` still catches a staking
``NotAllowed``. The API's exception handler and the HTML views read the
status from :data:`STATUS` and nowhere else.
"""

REFUSED = "refused"
CONFLICT = "conflict"
NOT_ALLOWED = "not_allowed"
NOT_FOUND = "not_found"

# The only place a domain meaning becomes an HTTP status.
STATUS = {
    REFUSED: 400,
    CONFLICT: 409,
    NOT_ALLOWED: 403,
    NOT_FOUND: 404,
}


class DomainError(ValueError):
    """A refused action; nothing was written. The message is for the person
    who asked. ``field`` names the input the refusal is about, when the
    answer should carry it there rather than as the request's ``detail``."""

    kind = REFUSED
    field: str | None = None

    def __init__(self, *args, field: str | None = None):
        super().__init__(*args)
        if field is not None:
            self.field = field

    @property
    def status(self) -> int:
        return STATUS[self.kind]


class Refused(DomainError):
    """The request cannot be done as asked (400)."""


class Conflict(DomainError):
    """The request clashes with what is already recorded (409)."""

    kind = CONFLICT


class NotAllowed(DomainError):
    """This person may not do this (403)."""

    kind = NOT_ALLOWED


class NotFound(DomainError):
    """The thing asked about does not exist, or not for this person (404)."""

    kind = NOT_FOUND

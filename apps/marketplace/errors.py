"""The marketplace's refusals (see ``apps.core.errors`` for what each kind
means over HTTP)."""

from apps.core.errors import DomainError, NotFound


class RentalError(DomainError):
    """A rental action that was refused; the message says why."""


class NotYours(RentalError, NotFound):
    """Someone asked about a rental that is not theirs (shown as not found)."""

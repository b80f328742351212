"""The name an owner chooses to show on public pages instead of their
address (docs/rules.md §7b): optional, unique whatever the case, and
cleared as easily as it was set. The login name is never shown publicly."""

import re

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from apps.core.errors import DomainError
from apps.core.models import Account, ModuleAccount

from .services import open_wallet

PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ._-]{1,30})[A-Za-z0-9]")


class NameRefused(DomainError):
    field = "public_name"


def clean(raw: str | None) -> str | None:
    """The name as it will be shown, or None to show the address; refuses
    with a message what cannot be a public name."""
    name = " ".join((raw or "").split())
    if not name:
        return None
    if not PATTERN.fullmatch(name):
        raise NameRefused(
            _(
                "A public name is 3 to 32 characters: letters, digits, spaces, dots, dashes and underscores, "
                "starting and ending with a letter or digit."
            )
        )
    lowered = name.lower()
    # A name that reads as an address or as one of the protocol's own
    # accounts would let a wallet pass itself off as another.
    if lowered.startswith("ath1") or lowered in {str(m.label).lower() for m in ModuleAccount}:
        raise NameRefused(_("That name is reserved."))
    return name


def set_public_name(user, raw: str | None) -> Account:
    """Show ``raw`` as ``user``'s public name; empty clears it."""
    name = clean(raw)
    wallet = open_wallet(user)
    if name and Account.objects.filter(public_name__iexact=name).exclude(pk=wallet.pk).exists():
        raise NameRefused(_("Someone else already shows that name."))
    wallet.public_name = name
    try:
        with transaction.atomic():
            wallet.save(update_fields=["public_name"])
    except IntegrityError:  # taken at the same moment by someone else
        raise NameRefused(_("Someone else already shows that name.")) from None
    return wallet

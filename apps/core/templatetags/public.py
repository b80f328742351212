"""How public pages name a person: by their wallet, as its owner chose
(a public name) or by its address; never by login name (docs/rules.md §7b).
Lists load ``<user>__wallet`` with their rows so this costs no query."""

from django import template
from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse
from django.utils.html import format_html

register = template.Library()


def _wallet(user):
    try:
        return user.wallet if user is not None else None
    except ObjectDoesNotExist:
        return None


@register.filter
def public_name(user) -> str:
    wallet = _wallet(user)
    return wallet.display_name if wallet is not None else "—"


@register.filter
def public_link(user) -> str:
    """The name, linked to the wallet's page in the explorer."""
    wallet = _wallet(user)
    if wallet is None:
        return "—"
    return format_html('<a href="{}">{}</a>', reverse("explorer:account", args=[wallet.address]), wallet.display_name)

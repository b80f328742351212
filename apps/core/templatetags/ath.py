"""Template filters for amounts: ``{{ value|ath }}`` -> "1,234.5 ATH" (in
Indonesian "1.234,5 ATH": the active language's separators, same digits)."""

from django import template
from django.utils.formats import get_format

from apps.core.amounts import display_uath as format_uath

register = template.Library()


@register.filter
def ath(value, places=None):
    if value is None or value == "":
        return "—"
    return format_uath(int(value), places=None if places is None else int(places))


@register.filter
def ath_plain(value):
    return "—" if value is None else format_uath(int(value), unit=False)


@register.filter
def signed_ath(value):
    value = int(value)
    return ("+" if value > 0 else "") + format_uath(value)


@register.filter
def ppm_percent(value):
    """Parts per million as a percent, exactly, to two places: 52_500 -> "5.25%"."""
    if value is None or value == "":
        return "—"
    whole, frac = divmod(int(value), 10_000)
    return f"{whole}{get_format('DECIMAL_SEPARATOR')}{frac // 100:02d}%"

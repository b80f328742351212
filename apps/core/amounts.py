"""ATH amounts: integer micro-ATH everywhere, formatting only at the edges.

1 ATH = 1,000,000 uATH. Parsing is integer arithmetic on the digits (see
:mod:`apps.core.numbers`), so "0.1" is exactly 100,000 uATH; nothing here
ever produces a float.
"""

import re

from django.utils.translation import gettext

from .numbers import NumberError, parse_scaled

UATH_PER_ATH = 1_000_000
# Largest amount a single leg may carry: the ceiling of a signed 64-bit column.
MAX_AMOUNT = 2**63 - 1
_DIGITS = re.compile(r"[0-9]+")


class AmountError(NumberError):
    """An amount a person typed that is not a valid ATH amount."""


def ath(value: int) -> int:
    """Whole ATH to micro-ATH, for constants in code: ``ath(10_000)``."""
    return int(value) * UATH_PER_ATH


def parse_ath(text: str | int, *, allow_zero: bool = False) -> int:
    """Parse a human ATH amount ("12.5", "1,000", "7 ATH") into micro-ATH.

    The one parser for every amount, price and filter typed in ATH: plain
    decimal notation only (no exponent, sign, underscore or non-ASCII digit),
    at most six decimals, at most the largest balance. Zero is refused unless
    the caller says it means something there (``allow_zero``). Each refusal
    is an :class:`AmountError` with a message a person can act on.
    """
    try:
        return parse_scaled(
            text,
            6,
            allow_zero=allow_zero,
            maximum=MAX_AMOUNT,
            suffixes=("ATH",),
            what="amount",
            too_fine=gettext("ATH has at most six decimals (1 uATH = 0.000001 ATH)."),
            too_large=gettext("That amount is larger than the whole supply."),
        )
    except AmountError:
        raise
    except NumberError as exc:
        raise AmountError(str(exc)) from None


def parse_uath(value: str | int, *, allow_zero: bool = False) -> int:
    """Integer micro-ATH as a client sends it ("1500000" or 1500000): ASCII
    digits only, at most the largest balance, zero only with ``allow_zero``."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise AmountError(gettext("Send micro-ATH as an integer or a string of digits."))
    if isinstance(value, int) and value.bit_length() > 256:  # str() of a huge int raises
        raise AmountError(gettext("That amount is larger than the whole supply."))
    text = str(value).strip()
    if not _DIGITS.fullmatch(text):
        raise AmountError(gettext('Micro-ATH must be a positive whole number, e.g. "1500000".'))
    # Checked before int(): no 10,000-digit string reaches it.
    digits = text.lstrip("0") or "0"
    if len(digits) > 19:
        raise AmountError(gettext("That amount is larger than the whole supply."))
    micro = int(digits)
    if micro == 0 and not allow_zero:
        raise AmountError(gettext("The amount must be more than zero."))
    if micro > MAX_AMOUNT:
        raise AmountError(gettext("That amount is larger than the whole supply."))
    return micro


def format_uath(
    micro: int, *, unit: bool = True, places: int | None = None, decimal: str = ".", thousands: str = ","
) -> str:
    """Format micro-ATH as ATH with thousands separators, exactly (no rounding
    unless ``places`` asks for it, and then always down)."""
    micro = int(micro)
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), UATH_PER_ATH)
    frac_text = f"{frac:06d}"
    if places is not None:
        frac_text = frac_text[:places]
    frac_text = frac_text.rstrip("0")
    text = f"{sign}{whole:,}".replace(",", thousands) + (f"{decimal}{frac_text}" if frac_text else "")
    return f"{text} ATH" if unit else text


def localize_separators(text: str) -> str:
    """A number written the plain way ("1,234.5", "12.5%") with the active
    language's separators instead, for display only."""
    from django.utils.formats import get_format

    table = str.maketrans({",": get_format("THOUSAND_SEPARATOR"), ".": get_format("DECIMAL_SEPARATOR")})
    return text.translate(table)


def display_uath(micro: int, *, unit: bool = True, places: int | None = None) -> str:
    """:func:`format_uath` with the separators of the language being shown
    (Indonesian writes 1.234,5 ATH), for text people read. Text a program
    reads back (API fields, chart data, form values) keeps ``format_uath``:
    the parsers accept only its plain notation."""
    from django.utils.formats import get_format

    return format_uath(
        micro,
        unit=unit,
        places=places,
        decimal=get_format("DECIMAL_SEPARATOR"),
        thousands=get_format("THOUSAND_SEPARATOR"),
    )

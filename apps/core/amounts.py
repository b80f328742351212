"""ATH amounts: integer micro-ATH everywhere, formatting only at the edges.

1 ATH = 1,000,000 uATH. Parsing goes through Decimal so that "0.1" is exactly
100,000 uATH; nothing here ever produces a float.
"""

from decimal import Decimal, InvalidOperation

UATH_PER_ATH = 1_000_000
# Largest amount a single leg may carry: the ceiling of a signed 64-bit column.
MAX_AMOUNT = 2**63 - 1


class AmountError(ValueError):
    """An amount a person typed that is not a valid ATH amount."""


def ath(value: int) -> int:
    """Whole ATH to micro-ATH, for constants in code: ``ath(10_000)``."""
    return int(value) * UATH_PER_ATH


def parse_ath(text: str | int | Decimal) -> int:
    """Parse a human ATH amount ("12.5", "1,000") into micro-ATH.

    Refuses negatives, zero, more than six decimals, non-numbers and amounts
    larger than any balance could hold, each with a message a person can act on.
    """
    if isinstance(text, bool) or text is None:
        raise AmountError("Enter an amount.")
    raw = str(text).strip().replace(",", "").replace("_", "")
    if raw.upper().endswith("ATH"):
        raw = raw[:-3].strip()
    if not raw:
        raise AmountError("Enter an amount.")
    if len(raw) > 40:
        raise AmountError("That amount is too long.")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise AmountError("Enter a number, like 12.5.") from None
    if not value.is_finite():
        raise AmountError("Enter a number, like 12.5.")
    if value <= 0:
        raise AmountError("The amount must be more than zero.")
    micro = value * UATH_PER_ATH
    if micro != micro.to_integral_value():
        raise AmountError("ATH has at most six decimals (1 uATH = 0.000001 ATH).")
    micro = int(micro)
    if micro > MAX_AMOUNT:
        raise AmountError("That amount is larger than the whole supply.")
    return micro


def format_uath(micro: int, *, unit: bool = True, places: int | None = None) -> str:
    """Format micro-ATH as ATH with thousands separators, exactly (no rounding
    unless ``places`` asks for it, and then always down)."""
    micro = int(micro)
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), UATH_PER_ATH)
    frac_text = f"{frac:06d}"
    if places is not None:
        frac_text = frac_text[:places]
    frac_text = frac_text.rstrip("0")
    text = f"{sign}{whole:,}" + (f".{frac_text}" if frac_text else "")
    return f"{text} ATH" if unit else text

"""Numbers typed by people or sent by clients: the one place text becomes an
integer.

Python's own parsers accept far more than a person means: ``int()`` takes
Unicode digits ("٣", "１"), underscores and, up to a 4,300-digit limit, any
length; ``Decimal()`` takes exponents ("1e999999999" overflows the moment it
is scaled, "1e-999999999" silently rounds to zero), NaN and Infinity. Every
id, page number, amount, price and percentage therefore goes through these
functions: plain ASCII digits, bounded length, exact integer arithmetic, and a
:class:`NumberError` with a message a person can act on for anything else.
"""

import re

from .errors import DomainError


class NumberError(DomainError):
    """Text that is not a number of the expected shape; the message says why."""


# Ids, heights and page numbers fit in a signed 64-bit column with room to
# spare at 18 digits; a longer string of digits is never a real one.
MAX_INT_DIGITS = 18

# A decimal number as people write it: digits, optionally grouped by commas
# in threes ("1,000,000"), optionally a dot and a fraction (".5", "5." too).
_DECIMAL = re.compile(r"(?P<whole>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)(?:\.(?P<frac>[0-9]*))?")
_INTEGER = re.compile(r"-?[0-9]+")
_EXPONENT = re.compile(r"[0-9.,]+[eE][+-]?[0-9]+")
# Longest text worth looking at: 19 digits of whole part with commas, a dot
# and a generous fraction. Anything longer is refused before any work.
MAX_DECIMAL_CHARS = 40


def _text(value, empty: str) -> str:
    if isinstance(value, bool) or value is None:
        raise NumberError(empty)
    if isinstance(value, int):
        # str() of an int past 4,300 digits raises; nothing real is that big.
        if value.bit_length() > 256:
            raise NumberError("That number is too large.")
        return str(value)
    if not isinstance(value, str):
        # Floats are never exact and Decimals may carry an exponent: a client
        # sends text (or a whole number), a person types text.
        raise NumberError('Send the number as text, like "12.5".')
    return value.strip()


def parse_int(
    value,
    *,
    minimum: int | None = 0,
    maximum: int | None = None,
    max_digits: int = MAX_INT_DIGITS,
    what: str = "number",
) -> int:
    """A whole number in plain ASCII digits (a leading minus only when
    ``minimum`` is negative or None), at most ``max_digits`` long, between
    ``minimum`` and ``maximum``. For ids, heights, page numbers and counts."""
    text = _text(value, f"Enter a {what}.")
    if not text:
        raise NumberError(f"Enter a {what}.")
    if not _INTEGER.fullmatch(text):
        raise NumberError(f"Enter a {what} in plain digits, like 42.")
    negative = text.startswith("-")
    digits = text.lstrip("-").lstrip("0") or "0"
    if len(digits) > max_digits:
        raise NumberError(f"That {what} is too long.")
    number = -int(digits) if negative else int(digits)
    if minimum is not None and number < minimum:
        raise NumberError(f"The {what} must be at least {minimum}.")
    if maximum is not None and number > maximum:
        raise NumberError(f"The {what} must be at most {maximum}.")
    return number


def parse_scaled(
    value,
    places: int,
    *,
    allow_zero: bool = False,
    maximum: int | None = None,
    suffixes: tuple[str, ...] = (),
    what: str = "number",
    example: str = "12.5",
    too_fine: str | None = None,
    too_large: str | None = None,
) -> int:
    """A non-negative decimal in plain notation ("12.5", "1,000", ".5") as an
    integer count of 10**-``places`` units: ``parse_scaled("1.5", 6)`` is
    1,500,000. No exponents, signs, underscores, spaces inside or non-ASCII
    digits; at most ``places`` decimals (extra trailing zeros are fine).
    Zero is refused unless ``allow_zero``. ``suffixes`` are units a person
    may type after the number ("ATH", "%")."""
    text = _text(value, f"Enter {'an' if what[0] in 'aeiou' else 'a'} {what}.")
    for suffix in suffixes:
        if text.upper().endswith(suffix.upper()):
            text = text[: -len(suffix)].strip()
            break
    if not text:
        raise NumberError(f"Enter {'an' if what[0] in 'aeiou' else 'a'} {what}.")
    if len(text) > MAX_DECIMAL_CHARS:
        raise NumberError(f"That {what} is too long.")
    if text.startswith("-") and _DECIMAL.fullmatch(text[1:]):
        raise NumberError(
            f"The {what} must be more than zero." if not allow_zero else f"The {what} cannot be negative."
        )
    match = _DECIMAL.fullmatch(text)
    if not match or not (match["whole"] or match["frac"]):
        if _EXPONENT.fullmatch(text):
            raise NumberError(f"Write the {what} out in full, like 1000 or 0.001 (no exponent).")
        if "_" in text and _DECIMAL.fullmatch(text.replace("_", "")):
            raise NumberError("Use commas between thousands (1,000), not underscores.")
        if "," in text and re.fullmatch(r"[0-9,]*(?:\.[0-9]*)?", text):
            raise NumberError("Use commas only between thousands (1,000) and a dot for decimals (12.5).")
        raise NumberError(f"Enter a number, like {example}.")
    whole = match["whole"].replace(",", "").lstrip("0")
    frac = match["frac"] or ""
    if frac[places:].strip("0"):
        raise NumberError(too_fine or f"Use at most {places} decimals.")
    if len(whole) > 19:
        raise NumberError(too_large or f"That {what} is too large.")
    scaled = int(whole or "0") * 10**places + int(frac[:places].ljust(places, "0") or "0")
    if scaled == 0 and not allow_zero:
        raise NumberError(f"The {what} must be more than zero.")
    if maximum is not None and scaled > maximum:
        raise NumberError(too_large or f"That {what} is too large.")
    return scaled

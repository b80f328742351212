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

from django.utils.formats import get_format
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy

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
# "1.000" or "12.345.678": thousands grouped by dots, as Indonesian writes them.
_DOT_GROUPED = re.compile(r"[1-9][0-9]{0,2}(?:\.[0-9]{3})+")
# Longest text worth looking at: 19 digits of whole part with commas, a dot
# and a generous fraction. Anything longer is refused before any work.
MAX_DECIMAL_CHARS = 40


# What a number is called in messages: "Enter an amount.", "The amount must
# be more than zero." Other names are shown as given.
_NAMES = {
    "number": (gettext_lazy("a number"), pgettext_lazy("the thing typed", "number")),
    "amount": (gettext_lazy("an amount"), pgettext_lazy("the thing typed", "amount")),
    "percentage": (gettext_lazy("a percentage"), pgettext_lazy("the thing typed", "percentage")),
    "value": (gettext_lazy("a value"), pgettext_lazy("the thing typed", "value")),
    "page number": (gettext_lazy("a page number"), pgettext_lazy("the thing typed", "page number")),
    "height": (gettext_lazy("a height"), pgettext_lazy("the thing typed", "height")),
    "epoch": (gettext_lazy("an epoch"), pgettext_lazy("the thing typed", "epoch")),
}


def _a(what: str) -> str:
    """The name with its article ("an amount")."""
    if what in _NAMES:
        return str(_NAMES[what][0])
    return f"{'an' if what[:1] in 'aeiou' else 'a'} {what}"


def _the(what: str) -> str:
    return str(_NAMES[what][1]) if what in _NAMES else what


def _text(value, empty: str) -> str:
    if isinstance(value, bool) or value is None:
        raise NumberError(empty)
    if isinstance(value, int):
        # str() of an int past 4,300 digits raises; nothing real is that big.
        if value.bit_length() > 256:
            raise NumberError(gettext("That number is too large."))
        return str(value)
    if not isinstance(value, str):
        # Floats are never exact and Decimals may carry an exponent: a client
        # sends text (or a whole number), a person types text.
        raise NumberError(gettext('Send the number as text, like "12.5".'))
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
    text = _text(value, gettext("Enter %(a_what)s.") % {"a_what": _a(what)})
    if not text:
        raise NumberError(gettext("Enter %(a_what)s.") % {"a_what": _a(what)})
    if not _INTEGER.fullmatch(text):
        raise NumberError(gettext("Enter %(a_what)s in plain digits, like 42.") % {"a_what": _a(what)})
    negative = text.startswith("-")
    digits = text.lstrip("-").lstrip("0") or "0"
    if len(digits) > max_digits:
        raise NumberError(gettext("That %(what)s is too long.") % {"what": _the(what)})
    number = -int(digits) if negative else int(digits)
    if minimum is not None and number < minimum:
        raise NumberError(
            gettext("The %(what)s must be at least %(minimum)s.") % {"what": _the(what), "minimum": minimum}
        )
    if maximum is not None and number > maximum:
        raise NumberError(
            gettext("The %(what)s must be at most %(maximum)s.") % {"what": _the(what), "maximum": maximum}
        )
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
    text = _text(value, gettext("Enter %(a_what)s.") % {"a_what": _a(what)})
    for suffix in suffixes:
        if text.upper().endswith(suffix.upper()):
            text = text[: -len(suffix)].strip()
            break
    if not text:
        raise NumberError(gettext("Enter %(a_what)s.") % {"a_what": _a(what)})
    if len(text) > MAX_DECIMAL_CHARS:
        raise NumberError(gettext("That %(what)s is too long.") % {"what": _the(what)})
    if text.startswith("-") and _DECIMAL.fullmatch(text[1:]):
        if not allow_zero:
            raise NumberError(gettext("The %(what)s must be more than zero.") % {"what": _the(what)})
        raise NumberError(gettext("The %(what)s cannot be negative.") % {"what": _the(what)})
    match = _DECIMAL.fullmatch(text)
    if not match or not (match["whole"] or match["frac"]):
        if _EXPONENT.fullmatch(text):
            raise NumberError(
                gettext("Write the %(what)s out in full, like 1000 or 0.001 (no exponent).") % {"what": _the(what)}
            )
        if "_" in text and _DECIMAL.fullmatch(text.replace("_", "")):
            raise NumberError(gettext("Use commas between thousands (1,000), not underscores."))
        if "," in text and re.fullmatch(r"[0-9,]*(?:\.[0-9]*)?", text):
            raise NumberError(gettext("Use commas only between thousands (1,000) and a dot for decimals (12.5)."))
        if get_format("DECIMAL_SEPARATOR") == "," and re.fullmatch(r"[0-9.]*,[0-9]+", text):
            # "1.234,5" as Indonesian pages write it.
            raise NumberError(
                gettext("Write %(text)s with a dot for decimals and no thousands dots, like 1234.5.") % {"text": text}
            )
        raise NumberError(gettext("Enter a number, like %(example)s.") % {"example": example})
    if _DOT_GROUPED.fullmatch(text) and get_format("THOUSAND_SEPARATOR") == ".":
        # Pages in this language write a thousand as "1.000"; typed back,
        # that would silently mean one. Refused rather than guessed.
        raise NumberError(
            gettext("Write %(text)s without thousands dots: a dot here starts the decimals (1000 or 1,000; 1.5).")
            % {"text": text}
        )
    whole = match["whole"].replace(",", "").lstrip("0")
    frac = match["frac"] or ""
    if frac[places:].strip("0"):
        raise NumberError(too_fine or gettext("Use at most %(places)s decimals.") % {"places": places})
    if len(whole) > 19:
        raise NumberError(too_large or gettext("That %(what)s is too large.") % {"what": _the(what)})
    scaled = int(whole or "0") * 10**places + int(frac[:places].ljust(places, "0") or "0")
    if scaled == 0 and not allow_zero:
        raise NumberError(gettext("The %(what)s must be more than zero.") % {"what": _the(what)})
    if maximum is not None and scaled > maximum:
        raise NumberError(too_large or gettext("That %(what)s is too large.") % {"what": _the(what)})
    return scaled

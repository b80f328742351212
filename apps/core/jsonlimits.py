"""JSON from the network, with limits on size and depth.

``json.loads`` recurses once per nesting level: a body of 50,000 "[" raises
RecursionError (a 500) and a few hundred levels still cost every serializer
that walks the result. No request this application understands nests more
than a handful of levels, so anything deeper than :data:`MAX_DEPTH` or larger
than the upload limit is refused with :class:`JSONLimitError`, a ValueError
whose message can be shown to the client. So is text holding a NUL.
"""

import json

from django.conf import settings

from .errors import DomainError

MAX_DEPTH = 64
# Django's own ceiling for a request body read into memory (2.5 MB unless
# configured); a body over it is refused before parsing.
DEFAULT_MAX_BYTES = 2_621_440


class JSONLimitError(DomainError):
    """A JSON body that is malformed, too large or nested too deeply."""


def max_bytes() -> int:
    return getattr(settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", None) or DEFAULT_MAX_BYTES


def _no_constants(name):
    # NaN and Infinity are not JSON, and no amount or measure may be one.
    raise JSONLimitError(f"{name} is not allowed in JSON.")


def depth_exceeds(value, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` deep;
    iterative, so it cannot itself run out of stack."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def loads(data: bytes | str, *, limit_bytes: int | None = None, max_depth: int = MAX_DEPTH, encoding: str = "utf-8"):
    """Parse ``data`` as JSON within the limits, or raise JSONLimitError."""
    limit_bytes = max_bytes() if limit_bytes is None else limit_bytes
    if len(data) > limit_bytes:
        raise JSONLimitError(f"The request body is larger than {limit_bytes:,} bytes.")
    if isinstance(data, bytes):
        try:
            data = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise JSONLimitError(f"The request body is not valid {encoding} text.") from None
    # Fewer opening brackets than the limit cannot nest past it: skip the walk.
    shallow = data.count("[") + data.count("{") <= max_depth
    try:
        value = json.loads(data, parse_constant=_no_constants)
    except RecursionError:
        raise JSONLimitError(f"The JSON nests more than {max_depth} levels deep.") from None
    except JSONLimitError:
        raise
    except ValueError as exc:
        raise JSONLimitError(f"The request body is not valid JSON: {exc}") from None
    if not shallow and depth_exceeds(value, max_depth):
        raise JSONLimitError(f"The JSON nests more than {max_depth} levels deep.")
    # A NUL can only arrive escaped (JSON refuses raw control characters), so
    # only a body with the escape is walked.
    if "\\u0000" in data and contains_nul(value):
        raise JSONLimitError("Text in the request contains a NUL character (\\u0000).")
    return value


def contains_nul(value) -> bool:
    """Whether any string in ``value`` (keys included) holds a NUL: no text
    field accepts one, and PostgreSQL cannot even look one up (a lookup by a
    slug holding NUL is a database error, not a miss)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False

"""The API's JSON parser: DRF's, with the size and depth limits of
:mod:`apps.core.jsonlimits` (a 400 with a message, never a 500)."""

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from apps.core import jsonlimits


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = jsonlimits.max_bytes()
        # Read one byte past the limit: enough to know it is too big without
        # holding an arbitrarily large body in memory.
        data = stream.read(limit + 1) if stream is not None else b""
        try:
            return jsonlimits.loads(data, limit_bytes=limit, encoding=encoding)
        except jsonlimits.JSONLimitError as exc:
            raise ParseError(str(exc)) from None

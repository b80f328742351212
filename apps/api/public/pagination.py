"""Keyset pagination for the public API: pages are read by ``id`` after the
last row of the previous page, so page 10,000 costs what page 1 costs and a
row inserted while a client walks the list is neither skipped nor repeated.

The cursor is opaque (base64 of a version and the last id) so its form can
change; a cursor that does not decode is a 400, not an empty page."""

import base64
import binascii

from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from apps.platform.api_fields import page_size

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
CURSOR_PREFIX = "k1:"


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> int:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    value = text.removeprefix(CURSOR_PREFIX)
    if not text.startswith(CURSOR_PREFIX) or not value.isdigit() or len(value) > 18:
        raise ValidationError({"cursor": [_("This cursor is not one this API gave out.")]})
    return int(value)


class KeysetPagination(BasePagination):
    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        size = page_size(request.query_params.get("page_size"), default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
        cursor = request.query_params.get("cursor")
        if cursor:
            queryset = queryset.filter(pk__gt=decode_cursor(cursor))
        rows = list(queryset.order_by("pk")[: size + 1])
        self.next_cursor = encode_cursor(rows[size - 1].pk) if len(rows) > size else None
        return rows[:size]

    def get_paginated_response(self, data):
        next_url = None
        if self.next_cursor:
            next_url = replace_query_param(self.request.build_absolute_uri(), "cursor", self.next_cursor)
        return Response({"next_cursor": self.next_cursor, "next": next_url, "results": data})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next_cursor", "next"],
            "properties": {
                "next_cursor": {"type": "string", "nullable": True, "description": "null on the last page"},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "next_cursor of the previous page",
                "schema": {"type": "string"},
            },
            {
                "name": "page_size",
                "in": "query",
                "required": False,
                "description": f"1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            },
        ]

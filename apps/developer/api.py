"""Exports over the API: the same rows as the developer page, streamed."""

from datetime import timedelta

from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from apps.platform.throttles import WindowThrottle

from . import exports


class ExportThrottle(WindowThrottle):
    scope = "export"

    def get_rate(self):
        return settings.EXPORTS_RATE


class Export(APIView):
    """Download your data for a date range (whole UTC days, at most a year) as
    CSV or JSON, streamed. Kinds: wallet (every entry with its transaction and
    memo), rentals (bills per epoch), earnings (provider earnings per node and
    epoch), delegations (rewards and slashes), checker (reports and marks)."""

    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [ExportThrottle]

    def perform_content_negotiation(self, request, force=False):
        # ``format`` names the export's format here, not DRF's renderer:
        # errors still answer in JSON.
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, required=True),
            OpenApiParameter("to", OpenApiTypes.DATE, required=True),
            OpenApiParameter("format", str, enum=list(exports.FORMATS), required=False),
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/json"): {"type": "array", "items": {"type": "object"}},
        },
    )
    def get(self, request, kind):
        if kind not in dict(exports.KINDS):
            raise ValidationError({"kind": [_("Unknown export: %(kind)s.") % {"kind": kind}]})
        fmt = request.query_params.get("format", "csv")
        if fmt not in exports.FORMATS:
            raise ValidationError({"format": [_("Choose csv or json.")]})
        span = exports.parse_range(request.query_params.get("from"), request.query_params.get("to"))
        items = exports.rows(kind, request.user, span)
        if fmt == "csv":
            body, content_type = exports.as_csv(kind, items), "text/csv; charset=utf-8"
        else:
            body, content_type = exports.as_json(items), "application/json"
        response = StreamingHttpResponse(body, content_type=content_type)
        name = f"aethir-{kind}-{span.start.date()}-{(span.end - timedelta(days=1)).date()}.{fmt}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

"""The public, read-only API of compute challenges: each with everything
needed to re-verify it (scripts/verify_challenge.py reads one as is)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import Refused
from apps.core.numbers import parse_int

from . import challenge_reports
from .models import ChallengeResult

MAX_PAGE = 100
FILTERS = {"node": "node_id", "checker": "checker_id", "epoch": "epoch", "before": "id__lt"}


def _int(request, name: str, default: str | None = None) -> int:
    try:
        return parse_int(request.query_params.get(name, default), what=name)
    except (TypeError, ValueError):
        raise Refused(f"{name} must be a whole number.") from None


class ChallengeList(APIView):
    """Compute challenges, newest first, filtered by ``node``, ``checker``
    and ``epoch``; ``limit`` (1 to 100, default 20) and ``before`` (the
    ``next_before`` of the previous page) page through them."""

    permission_classes = [AllowAny]

    @extend_schema(operation_id="monitoring_challenges_list", responses=OpenApiTypes.OBJECT)
    def get(self, request):
        rows = ChallengeResult.objects.select_related("report").order_by("-id")
        for name, lookup in FILTERS.items():
            if name in request.query_params:
                rows = rows.filter(**{lookup: _int(request, name)})
        limit = _int(request, "limit", "20")
        if not 1 <= limit <= MAX_PAGE:
            raise Refused(f"limit must be from 1 to {MAX_PAGE}.")
        page = list(rows[:limit])
        return Response(
            {
                "results": [{"id": c.pk, **challenge_reports.public(c)} for c in page],
                "next_before": page[-1].pk if len(page) == limit else None,
            }
        )


class ChallengeDetail(APIView):
    """One compute challenge, in the form scripts/verify_challenge.py reads."""

    permission_classes = [AllowAny]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, pk: int):
        c = get_object_or_404(ChallengeResult.objects.select_related("report"), pk=pk)
        return Response({"id": c.pk, **challenge_reports.public(c)})

"""Public SVG badges: a node's or a checker's uptime over 30 days and its
status, for providers and operators to put on their own pages. Cacheable:
the figures change once an epoch at most."""

from datetime import timedelta
from xml.sax.saxutils import escape

from django.db.models import Avg, Sum
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from apps.core import epochs
from apps.core.models import CheckerNode, GpuNode
from apps.monitoring.models import CheckerEpoch, NodeEpoch

WINDOW = timedelta(days=30)
COLOURS = {"online": "#2e9e44", "active": "#2e9e44", "degraded": "#d68f00", "pending": "#6b7280"}
RED = "#c0392b"


def _first_epoch() -> int:
    return epochs.number_at(timezone.now() - WINDOW)


def node_uptime_ppm(node: GpuNode) -> int | None:
    avg = NodeEpoch.objects.filter(node=node, valid=True, epoch__gte=_first_epoch()).aggregate(a=Avg("uptime_ppm"))["a"]
    return None if avg is None else int(avg)


def checker_uptime_ppm(checker: CheckerNode) -> int | None:
    """Reports delivered of those assigned: a checker's uptime is doing its rounds."""
    t = CheckerEpoch.objects.filter(checker=checker, epoch__gte=_first_epoch()).aggregate(
        a=Sum("assigned"), d=Sum("delivered")
    )
    if not t["a"]:
        return None
    return t["d"] * 1_000_000 // t["a"]


def render(label: str, uptime_ppm: int | None, status: str) -> str:
    value = "no data" if uptime_ppm is None else f"{uptime_ppm / 10_000:.2f}%"
    text = f"{value} · {status}"
    colour = COLOURS.get(status, RED)
    left, right = 7 * len(label) + 12, 7 * len(text) + 12
    width = left + right
    label, text = escape(label), escape(text)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{label}: {text}"><title>{label}: {text}</title>'
        f'<rect width="{left}" height="20" fill="#555"/><rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle">'
        f'<text x="{left / 2}" y="14">{label}</text><text x="{left + right / 2}" y="14">{text}</text></g></svg>'
    )


def _svg(body: str) -> HttpResponse:
    response = HttpResponse(body, content_type="image/svg+xml")
    # Embedded on other sites: no cookies, any origin may load it.
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_GET
@cache_control(public=True, max_age=300)
def node_badge(request, pk):
    node = get_object_or_404(GpuNode, pk=pk)
    return _svg(render("uptime 30d", node_uptime_ppm(node), node.status))


@require_GET
@cache_control(public=True, max_age=300)
def checker_badge(request, pk):
    checker = get_object_or_404(CheckerNode, pk=pk)
    return _svg(render("checker 30d", checker_uptime_ppm(checker), checker.status))

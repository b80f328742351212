from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from apps.core import epochs

from . import queries, services, statement
from .models import EpochSettlement, LineKind, NetworkIncident, SettlementLine


def index(request):
    page = Paginator(EpochSettlement.objects.order_by("-epoch"), 30).get_page(request.GET.get("page"))
    try:
        due = len(services.due_epochs())
        current = epochs.current_number()
    except LookupError:
        due, current = 0, 0
    return render(
        request,
        "settlement/index.html",
        {
            "page": page,
            "charts": queries.chart_data(),
            "due": due,
            "current": current,
            "incidents": queries.recent_incidents(),
        },
    )


def detail(request, epoch: int):
    report = get_object_or_404(EpochSettlement, epoch=epoch)
    kind = request.GET.get("kind") or None
    lines = SettlementLine.objects.filter(epoch=epoch).select_related("account", "account__owner", "node", "checker")
    if kind in LineKind.values:
        lines = lines.filter(kind=kind)
    page = Paginator(lines.order_by("kind", "-amount", "id"), 100).get_page(request.GET.get("page"))
    return render(
        request,
        "settlement/detail.html",
        {
            "report": report,
            "page": page,
            "kind": kind,
            "kinds": LineKind.choices,
            "incident": NetworkIncident.objects.filter(epoch=epoch).first(),
        },
    )


@login_required
def mine(request):
    page = Paginator(queries.lines_for_user(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "settlement/mine.html", {"page": page, **statement.statement(request.user)})

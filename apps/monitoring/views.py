from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from apps.core import epochs
from apps.core.models import CheckerNode, GpuNode, NodeStatus
from apps.core.numbers import parse_int

from . import assignment, queries, status


def index(request):
    return render(request, "monitoring/index.html", queries.overview_context())


def node_list(request):
    status = request.GET.get("status") or None
    if status not in NodeStatus.values:
        status = None
    qs = GpuNode.objects.select_related("gpu_model", "region").order_by("id")
    if status:
        qs = qs.filter(status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(request, "monitoring/nodes.html", {"page": page, "status": status, "statuses": NodeStatus.choices})


def _node(pk: int) -> GpuNode:
    return get_object_or_404(GpuNode.objects.select_related("gpu_model", "region", "provider__wallet"), pk=pk)


def node_detail(request, pk: int):
    # The page's socket brings the epochs the scheduler records, from
    # whichever process (the hint goes through the outbox).
    return render(request, "monitoring/node.html", queries.node_context(_node(pk)))


def _unit(request) -> str:
    unit = request.GET.get("unit") or "day"
    return unit if unit in status.UNITS else "day"


def node_status(request, pk: int):
    return render(request, "monitoring/status.html", status.node_status(_node(pk), _unit(request)))


def checker_status(request, pk: int):
    checker = get_object_or_404(CheckerNode.objects.select_related("operator__wallet"), pk=pk)
    return render(request, "monitoring/status.html", status.checker_status(checker, _unit(request)))


def checker_list(request):
    return render(request, "monitoring/checkers.html", {"checkers": queries.checker_rows()})


def checker_detail(request, pk: int):
    checker = get_object_or_404(CheckerNode.objects.select_related("operator__wallet"), pk=pk)
    return render(request, "monitoring/checker.html", queries.checker_context(checker))


def assignments(request):
    try:
        current = epochs.current_number()
    except LookupError:
        current = 0
    try:
        number = parse_int(request.GET.get("epoch", str(current)), what="epoch")
    except ValueError:
        number = current
    number = max(0, min(number, current))
    result = assignment.verify(number)
    rows = (
        assignment.Assignment.objects.filter(epoch=number)
        .select_related("node", "checker")
        .order_by("node_id", "checker_id")
    )
    page = Paginator(rows, 60).get_page(request.GET.get("page"))
    return render(
        request, "monitoring/assignments.html", {"epoch": number, "current": current, "result": result, "page": page}
    )

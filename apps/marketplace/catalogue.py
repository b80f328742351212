"""The catalogue's read side: filtered, sorted, paginated nodes with their
recent uptime, shared by the page and the API so both show the same list."""

import heapq
from decimal import Decimal
from itertools import islice

from django.core.paginator import Paginator
from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Q, Value, When
from django.utils.functional import cached_property

from apps.core import epochs, parameters
from apps.core.models import GpuModel, GpuNode, NodeStatus, Region
from apps.monitoring.models import NodeEpoch

from .matching import region_table
from .models import Rental, RentalStatus

PER_PAGE = 20
SPARK_EPOCHS = 24
LISTED = (NodeStatus.ONLINE, NodeStatus.DEGRADED)


def _offers(filters: dict):
    """The listed nodes that pass ``filters``, before the "free to rent now"
    condition on rentals; with the proximity table and the sort order."""
    qs = GpuNode.objects.filter(status__in=LISTED)
    if _free_only(filters):
        qs = qs.filter(status=NodeStatus.ONLINE, paused=False)
    if filters.get("gpu"):
        qs = qs.filter(gpu_model__slug=filters["gpu"])
    if filters.get("min_vram"):
        qs = qs.filter(gpu_model__vram_gb__gte=filters["min_vram"])
    if filters.get("count"):
        qs = qs.filter(gpu_count__gte=filters["count"])
    if filters.get("region"):
        qs = qs.filter(region__code=filters["region"])
    if filters.get("max_price") is not None:
        qs = qs.filter(price_per_gpu_hour__lte=filters["max_price"])
    if filters.get("min_health") is not None:
        qs = qs.filter(health_score__gte=filters["min_health"] * 10_000)
    near = Region.objects.filter(code=filters["near"]).first() if filters.get("near") else None
    table = region_table(near) if near else {}
    if table:
        qs = qs.annotate(
            distance=Case(
                *[When(region_id=rid, then=Value(km)) for rid, (km, _, _) in table.items()],
                default=Value(0),
                output_field=IntegerField(),
            )
        )
    sort = filters.get("sort") or "price"
    order = {
        "price": ["price_per_gpu_hour", "-health_score", "pk"],
        "-price": ["-price_per_gpu_hour", "-health_score", "pk"],
        "health": ["-health_score", "price_per_gpu_hour", "pk"],
        "vram": [F("gpu_model__vram_gb").desc(), "price_per_gpu_hour", "pk"],
        "proximity": ["distance", "price_per_gpu_hour", "pk"] if table else ["price_per_gpu_hour", "pk"],
    }.get(sort, ["price_per_gpu_hour", "pk"])
    return qs, near, table, order


def _free_only(filters: dict) -> bool:
    return filters.get("availability", "free") == "free"


def _rented():
    return Exists(Rental.objects.filter(node=OuterRef("pk"), status=RentalStatus.ACTIVE))


def nodes(filters: dict):
    """``filters`` are cleaned CatalogueForm values (all optional)."""
    qs, near, table, order = _offers(filters)
    qs = qs.select_related("gpu_model", "region").annotate(rented=_rented())
    if _free_only(filters):
        qs = qs.filter(rented=False)
    return qs.order_by(*order), near, table


def count(filters: dict) -> int:
    """How many nodes ``nodes(filters)`` lists, exactly. The offers are
    counted from the node index alone; the rented ones among them either by
    asking each offer (a few) or by looking up the active rentals' nodes
    (many offers: a rental lookup costs a few times an offer probe)."""
    qs = _offers(filters)[0].order_by()
    total = qs.count()
    if _free_only(filters) and total:
        active = Rental.objects.filter(status=RentalStatus.ACTIVE)
        if total <= 4 * active.count():
            return qs.filter(~_rented()).count()
        total -= qs.filter(pk__in=active.values("node_id")).count()
    return total


class _Pages(Paginator):
    """Pages over node ids; the count is ``count(filters)``."""

    def __init__(self, object_list, per_page, filters):
        super().__init__(object_list, per_page)
        self._filters = filters

    @cached_property
    def count(self):
        return count(self._filters)


# Past this many rows into a grouped sort, one plain sorted query is cheaper
# than a query per group.
GROUPED_DEPTH = 4_000


class _Grouped:
    """The ids of ``qs`` in a sort led by a value that few groups of nodes
    share (a GPU model's VRAM), then price and id.

    Sorting every listed node by a joined or computed column reads them all
    (100,000 at scale); instead each group is read in the order an index
    already keeps (price within a GPU model), only as deep as
    the page needs, and the groups are merged by (group rank, price, id):
    the same order, from a few hundred index entries."""

    def __init__(self, qs, groups: list[tuple[int, Q]]):
        self.qs, self.groups = qs, groups

    def __getitem__(self, window: slice) -> list[int]:
        start, stop = window.start or 0, window.stop
        if stop is None or stop > GROUPED_DEPTH:
            return list(self.qs.values_list("pk", flat=True)[window])
        heads = [
            [
                (rank, price, pk)
                for pk, price in self.qs.filter(cond)
                .order_by("price_per_gpu_hour", "pk")
                .values_list("pk", "price_per_gpu_hour")[:stop]
            ]
            for rank, cond in self.groups
        ]
        return [pk for _, _, pk in islice(heapq.merge(*heads), start, stop)]


def _groups(filters: dict, table: dict) -> list[tuple[int, Q]] | None:
    """The groups a grouped sort walks, each with its rank (ascending), or
    None when the sort is not one of them. Nearest-first is not: measured,
    fifteen per-region reads cost more than sorting the region column."""
    sort = filters.get("sort")
    if sort == "vram":
        return [(-vram, Q(gpu_model_id=pk)) for pk, vram in GpuModel.objects.values_list("pk", "vram_gb")]
    return None


def page(filters: dict, number) -> tuple:
    qs, near, table = nodes(filters)
    # The page's ids first (sorting and skipping narrow rows), then those
    # twenty nodes in full.
    groups = _groups(filters, table)
    ids_in_order = qs.values_list("pk", flat=True) if groups is None else _Grouped(qs, groups)
    p = _Pages(ids_in_order, PER_PAGE, filters).get_page(number)
    ids = list(p.object_list)
    by_id = {
        n.pk: n
        for n in GpuNode.objects.filter(pk__in=ids).select_related("gpu_model", "region").annotate(rented=_rented())
    }
    rows = [by_id[pk] for pk in ids if pk in by_id]
    sparks = sparklines(ids)
    reliable = reliability(ids)
    for node in rows:
        node.spark = sparks.get(node.pk)
        node.reliability = reliable.get(node.pk)
        decorate(node)
        if table:
            node.rtt_ms = table[node.region_id][2]
    return p, rows, near


RELIABILITY_DAYS = 30


def reliability(node_ids: list[int], days: int = RELIABILITY_DAYS) -> dict[int, dict]:
    """Per node, over the last ``days`` (or its life, if shorter): the share
    of its epochs in which checkers reached consensus and found it at or
    above the SLA uptime target. Epochs without consensus count as missed."""
    if not node_ids:
        return {}
    try:
        last = epochs.current_number()
    except LookupError:
        return {}
    per_day = max(1, 86_400 // parameters.get("epoch_seconds"))
    target = parameters.get("sla_uptime_target")
    rows = (
        NodeEpoch.objects.filter(node_id__in=node_ids, epoch__gte=last - days * per_day, epoch__lt=last)
        .order_by()
        .values("node_id")
        .annotate(n=Count("id"), good=Count("id", filter=Q(valid=True, uptime_ppm__gte=target)))
    )
    return {
        r["node_id"]: {
            "ppm": r["good"] * 1_000_000 // r["n"],
            "epochs": r["n"],
            "days": min(days, -(-r["n"] // per_day)),
        }
        for r in rows
        if r["n"]
    }


def decorate(node) -> None:
    """Display helpers computed in Python with integers (templates would
    round through floats)."""
    node.hourly = node.price_per_gpu_hour * node.gpu_count
    # Throughput: the model's FP32 TFLOPS times the GPUs, and what an ATH an
    # hour buys of it (tenths, as an integer, so the template does no float maths).
    tflops = node.gpu_model.fp32_tflops * node.gpu_count if node.gpu_model.fp32_tflops else None
    node.tflops = tflops
    node.tflops_per_ath = (
        Decimal(int(tflops * 1_000_000 * 10 // node.hourly)) / 10 if tflops is not None and node.hourly else None
    )
    node.health_pct = node.health_score // 10_000
    node.health_class = "good" if node.health_score >= 950_000 else "fair" if node.health_score >= 800_000 else "poor"


def sparklines(node_ids: list[int], n: int = SPARK_EPOCHS) -> dict[int, dict]:
    """Per node, the consensus uptime of the last ``n`` epochs as SVG polyline
    points (100 x 24 box; no JS, so htmx-swapped lists need no redraw)."""
    if not node_ids:
        return {}
    try:
        last = epochs.current_number()
    except LookupError:
        return {}
    first = last - n
    series: dict[int, dict[int, int]] = {i: {} for i in node_ids}
    for node_id, e, uptime in NodeEpoch.objects.filter(
        epoch__gte=first, epoch__lt=last, node_id__in=node_ids, valid=True
    ).values_list("node_id", "epoch", "uptime_ppm"):
        series[node_id][e] = uptime
    out = {}
    for node_id, by_epoch in series.items():
        if not by_epoch:
            continue
        values = [by_epoch.get(e) for e in range(first, last)]
        pts = []
        for i, v in enumerate(values):
            if v is None:
                continue
            x = i * 100 // max(1, n - 1)
            y = 22 - (v * 20 // 1_000_000)  # 100% at the top, 0% at the bottom
            pts.append(f"{x},{y}")
        known = [v for v in values if v is not None]
        out[node_id] = {
            "points": " ".join(pts),
            "avg": sum(known) // len(known) // 10_000,
            "epochs": len(known),
            "low": min(known) < 990_000,
        }
    return out

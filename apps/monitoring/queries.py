"""Read-side queries for the monitoring pages, consumers and API, so every
view of the network shows the same numbers."""

from datetime import timedelta

from django.db.models import Avg, Count, Max, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from apps.core import epochs
from apps.core.models import CheckerNode, CheckerStatus, GpuNode, NodeStatus
from apps.platform.charts import epoch_axis
from apps.settlement import queries as settlement_queries

from .models import CheckerEpoch, CheckerReport, Heartbeat, NodeEpoch

LIVE_WINDOW = timedelta(minutes=2)


def overview() -> dict:
    now = timezone.now()
    status_counts = dict(GpuNode.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    gpus_online = (
        GpuNode.objects.filter(status__in=[NodeStatus.ONLINE, NodeStatus.DEGRADED]).aggregate(gpus=Sum("gpu_count"))[
            "gpus"
        ]
        or 0
    )
    by_region = list(
        GpuNode.objects.filter(status__in=[NodeStatus.ONLINE, NodeStatus.DEGRADED])
        .values("region__code", "region__name", "region__latitude", "region__longitude")
        .annotate(gpus=Sum("gpu_count"), nodes=Count("id"))
        .order_by("-gpus")
    )
    by_model = list(
        GpuNode.objects.filter(status__in=[NodeStatus.ONLINE, NodeStatus.DEGRADED])
        .values("gpu_model__name")
        .annotate(gpus=Sum("gpu_count"))
        .order_by("-gpus")
    )
    recent = Heartbeat.objects.filter(at__gte=now - LIVE_WINDOW).aggregate(
        util=Avg("gpu_util"), temp=Avg("temperature_c"), samples=Count("id"), nodes=Count("node", distinct=True)
    )
    try:
        current = epochs.current_number()
    except LookupError:
        current = 0
    reports_now = CheckerReport.objects.filter(epoch=current).count()
    last = NodeEpoch.objects.aggregate(e=Max("epoch"))["e"]
    latency = None
    if last is not None:
        latency = NodeEpoch.objects.filter(epoch=last, valid=True).aggregate(l=Avg("latency_ms"))["l"]
    return {
        "epoch": current,
        "nodes": sum(status_counts.values()),
        "status_counts": {s: status_counts.get(s, 0) for s in NodeStatus.values},
        "gpus_online": gpus_online,
        "by_region": [
            {
                "code": r["region__code"],
                "name": r["region__name"],
                "gpus": r["gpus"],
                "nodes": r["nodes"],
                "lat": str(r["region__latitude"]),
                "lon": str(r["region__longitude"]),
            }
            for r in by_region
        ],
        "by_model": [{"model": r["gpu_model__name"], "gpus": r["gpus"]} for r in by_model],
        "utilisation": round(recent["util"]) if recent["util"] is not None else None,
        "temperature": round(recent["temp"]) if recent["temp"] is not None else None,
        "samples_recent": recent["samples"],
        "nodes_reporting": recent["nodes"],
        "checkers_active": CheckerNode.objects.filter(status=CheckerStatus.ACTIVE).count(),
        "checkers_jailed": CheckerNode.objects.filter(status=CheckerStatus.JAILED).count(),
        "reports_this_epoch": reports_now,
        "last_consensus_epoch": last,
        "latency_ms": round(latency) if latency is not None else None,
    }


def last_heartbeat(node_id: int):
    """When the node's newest kept sample was taken (``None`` when none is
    kept: a new node, or one silent for longer than telemetry is kept).
    Read from the samples, through the (node, at) index, rather than
    stamped on the node: every agent post would otherwise rewrite the node
    row, the marketplace's hottest, for a time only these pages show."""
    return Heartbeat.objects.filter(node_id=node_id).order_by("-at").values_list("at", flat=True).first()


def with_last_heartbeat(nodes):
    """``nodes`` (a GpuNode queryset) with ``last_heartbeat_at`` annotated,
    as ``last_heartbeat`` reads it."""
    newest = Heartbeat.objects.filter(node=OuterRef("pk")).order_by("-at").values("at")[:1]
    return nodes.annotate(last_heartbeat_at=Subquery(newest))


def node_series(node: GpuNode, epochs_back: int = 60) -> dict:
    """Per-epoch series for a node's charts (consensus + telemetry rollup),
    plus the raw samples of the last minutes for the live utilisation chart."""
    rows = list(NodeEpoch.objects.filter(node=node).order_by("-epoch")[:epochs_back])[::-1]
    samples = list(
        Heartbeat.objects.filter(node=node, at__gte=timezone.now() - timedelta(minutes=10))
        .order_by("at")
        .values("at", "gpu_util", "temperature_c", "power_w")
    )
    return {
        "epochs": [r.epoch for r in rows],
        "epoch_axis": epoch_axis([r.epoch for r in rows]),
        "uptime": [None if r.uptime_ppm is None else r.uptime_ppm / 10_000 for r in rows],
        "latency": [r.latency_ms for r in rows],
        "health": [None if r.health_score is None else r.health_score / 10_000 for r in rows],
        "util_epoch": [r.gpu_util_avg for r in rows],
        "temp_epoch": [r.temperature_max for r in rows],
        "sample_times": [s["at"].isoformat() for s in samples],
        "sample_util": [s["gpu_util"] for s in samples],
        "sample_temp": [s["temperature_c"] for s in samples],
    }


def node_epochs(node: GpuNode, limit: int = 10) -> list[NodeEpoch]:
    """The node's latest consensus rows, newest first."""
    return list(NodeEpoch.objects.filter(node=node).order_by("-epoch")[:limit])


def checker_history(checker: CheckerNode, epochs_back: int = 60) -> dict:
    rows = list(CheckerEpoch.objects.filter(checker=checker).order_by("-epoch")[:epochs_back])[::-1]
    totals = CheckerEpoch.objects.filter(checker=checker).aggregate(
        assigned=Sum("assigned"), delivered=Sum("delivered"), correct=Sum("correct"), incorrect=Sum("incorrect")
    )
    return {
        "checker": checker.pk,
        "epochs": [r.epoch for r in rows],
        "assigned": [r.assigned for r in rows],
        "delivered": [r.delivered for r in rows],
        "correct": [r.correct for r in rows],
        "incorrect": [r.incorrect for r in rows],
        "totals": {k: v or 0 for k, v in totals.items()},
    }


def recent_reports(*, node=None, checker=None, limit=20):
    qs = CheckerReport.objects.select_related("node", "checker").order_by("-submitted_at")
    if node is not None:
        qs = qs.filter(node=node)
    if checker is not None:
        qs = qs.filter(checker=checker)
    return list(qs[:limit])


def node_rows(status: str | None = None, limit: int = 50):
    qs = GpuNode.objects.select_related("gpu_model", "region").order_by("-health_score", "id")
    if status:
        qs = qs.filter(status=status)
    return qs[:limit]


def checker_rows():
    return (
        CheckerNode.objects.select_related("operator__wallet")
        .annotate(reports_total=Count("reports"), reports_incorrect=Count("reports", filter=Q(reports__correct=False)))
        .order_by("-total_stake", "id")
    )


# Contexts of the live fragments: the page renders them first, its socket
# re-renders them after each hint.


def overview_context() -> dict:
    return {
        "overview": overview(),
        "top_nodes": node_rows(limit=12),
        "incidents": settlement_queries.recent_incidents(),
    }


def node_context(node: GpuNode) -> dict:
    return {
        "node": node,
        "epochs": node_epochs(node),
        "series": node_series(node),
        "reports": recent_reports(node=node, limit=15),
    }


def checker_context(checker: CheckerNode) -> dict:
    history = checker_history(checker)  # also the API's answer: the chart's axis is added here
    return {
        "checker": checker,
        "history": {**history, "epoch_axis": epoch_axis(history["epochs"])},
        "reports": recent_reports(checker=checker, limit=20),
    }

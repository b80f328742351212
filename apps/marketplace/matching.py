"""Matching a renter to nodes (the scheduler of docs/rules.md §4): keep
the nodes a renter could take, rank them, and say why.

Filter: online, not paused, free (no active rental), not the renter's own,
the GPU model or at least the VRAM asked for, at least the GPU count, the
price within budget, and the estimated round trip from the renter's region
within the limit.

Rank: three scores in parts per million, weighted by the renter's
preference and summed with integer arithmetic:

* health     the node's consensus health score (already ppm);
* proximity  1 - distance / half the Earth's circumference, great-circle
             distance between the renter's region and the node's region
             (1,000,000 for every node when the renter names no region);
* price      cheapest hourly cost among the candidates / this node's hourly
             cost (the cheapest scores 1,000,000).

The ranking runs in SQL (a CASE over the 14 regions for proximity), so a
match over 100,000 nodes is one aggregate, one ranking over the node index
and one fetch of the winners; the same numbers come back as annotations and
are what the page and the API explain.
"""

import math
from dataclasses import dataclass, field

from django.db.models import BigIntegerField, Count, Exists, F, Min, OuterRef
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from apps.core.amounts import display_uath, localize_separators
from apps.core.models import GpuModel, GpuNode, NodeStatus, Region

from .models import Rental, RentalStatus

PPM = 1_000_000
EARTH_RADIUS_KM = 6371
HALF_CIRCUMFERENCE_KM = 20_015  # the farthest two points on Earth can be


class Preference:
    CHEAPEST = "cheapest"
    EXPERIENCE = "experience"
    BALANCED = "balanced"

    choices = [
        (BALANCED, _("Balanced")),
        (CHEAPEST, _("Cheapest")),
        (EXPERIENCE, _("Best experience")),
    ]


# The score's parts and the preferences as the match page names them.
PART_NAMES = [gettext_noop("health"), gettext_noop("proximity"), gettext_noop("price")]
PREFERENCE_NAMES = [gettext_noop("balanced"), gettext_noop("cheapest"), gettext_noop("experience")]

# ppm weights of (health, proximity, price); each row sums to 1,000,000.
WEIGHTS = {
    Preference.CHEAPEST: {"health": 200_000, "proximity": 100_000, "price": 700_000},
    Preference.EXPERIENCE: {"health": 500_000, "proximity": 400_000, "price": 100_000},
    Preference.BALANCED: {"health": 400_000, "proximity": 300_000, "price": 300_000},
}


def distance_km(a: Region, b: Region) -> int:
    """Great-circle (haversine) distance in whole km. Not money, so the
    trigonometry may use floats; the result is an integer so that every
    score built on it is exact and reproducible."""
    lat1, lon1, lat2, lon2 = map(lambda d: math.radians(float(d)), (a.latitude, a.longitude, b.latitude, b.longitude))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return round(2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h))))


def estimated_rtt_ms(km: int) -> int:
    """Round trip over fibre: light covers ~200 km/ms in glass, routes are
    ~1.5x the great circle, plus ~5 ms of last-mile and switching."""
    return 5 + km * 3 // 200


def proximity_ppm(km: int) -> int:
    return PPM * max(0, HALF_CIRCUMFERENCE_KM - km) // HALF_CIRCUMFERENCE_KM


def region_table(origin: Region | None) -> dict[int, tuple[int, int, int]]:
    """region id -> (km, proximity ppm, estimated RTT ms) from ``origin``."""
    table = {}
    for region in Region.objects.all():
        if origin is None:
            table[region.pk] = (0, PPM, 0)
        else:
            km = distance_km(origin, region)
            table[region.pk] = (km, proximity_ppm(km), estimated_rtt_ms(km))
    return table


@dataclass
class Requirements:
    gpu_model: GpuModel | None = None
    min_vram_gb: int | None = None
    gpu_count: int = 1
    region: Region | None = None
    max_price_per_gpu_hour: int | None = None
    max_latency_ms: int | None = None
    duration_hours: int | None = None
    preference: str = Preference.BALANCED
    renter: object = None
    exclude_node_ids: tuple = ()
    # Replacements must fit the escrow already posted.
    max_cost_per_hour: int | None = None


@dataclass
class Part:
    name: str
    score: int  # ppm
    weight: int  # ppm
    detail: str

    @property
    def points(self) -> int:
        return self.score * self.weight // PPM


@dataclass
class Candidate:
    node: GpuNode
    rank: int
    total: int  # ppm
    parts: list[Part] = field(default_factory=list)
    distance_km: int = 0
    rtt_ms: int = 0
    cost_per_hour: int = 0

    @property
    def why(self) -> str:
        best = max(self.parts, key=lambda p: p.points)
        return gettext("strongest on %(part)s (%(detail)s)") % {"part": gettext(best.name), "detail": best.detail}


def free_q():
    return ~Exists(Rental.objects.filter(node=OuterRef("pk"), status=RentalStatus.ACTIVE))


def candidates_qs(req: Requirements, table: dict):
    qs = GpuNode.objects.filter(status=NodeStatus.ONLINE, paused=False, gpu_count__gte=max(1, req.gpu_count))
    if req.gpu_model is not None:
        qs = qs.filter(gpu_model=req.gpu_model)
    if req.min_vram_gb:
        qs = qs.filter(gpu_model__vram_gb__gte=req.min_vram_gb)
    if req.max_price_per_gpu_hour is not None:
        qs = qs.filter(price_per_gpu_hour__lte=req.max_price_per_gpu_hour)
    if req.renter is not None and getattr(req.renter, "pk", None):
        qs = qs.exclude(provider=req.renter)
    if req.exclude_node_ids:
        qs = qs.exclude(pk__in=list(req.exclude_node_ids))
    if req.max_latency_ms is not None and req.region is not None:
        within = [rid for rid, (_, _, rtt) in table.items() if rtt <= req.max_latency_ms]
        qs = qs.filter(region_id__in=within)
    qs = qs.annotate(cost=F("price_per_gpu_hour") * F("gpu_count"))
    if req.max_cost_per_hour is not None:
        qs = qs.filter(cost__lte=req.max_cost_per_hour)
    return qs.filter(free_q())


def match(req: Requirements, limit: int = 5) -> dict:
    """The top ``limit`` candidates with their score breakdown, and how many
    nodes passed the filter."""
    preference = req.preference if req.preference in WEIGHTS else Preference.BALANCED
    w = WEIGHTS[preference]
    table = region_table(req.region)
    qs = candidates_qs(req, table)
    agg = qs.aggregate(n=Count("pk"), min_cost=Min("cost"))
    count, min_cost = agg["n"], agg["min_cost"]
    if not count:
        return {"count": 0, "candidates": [], "preference": preference, "weights": w, "min_cost": None}

    # One raw expression: Django's CASE/Cast expression tree for 14 regions
    # costs more to compile than the query costs to run. Integer division in
    # both SQLite and PostgreSQL (bigint / bigint); all terms are
    # non-negative, so truncation is rounding down, exactly as Part.points.
    node_table = GpuNode._meta.db_table
    whens = " ".join(f"WHEN {int(rid)} THEN {int(p)}" for rid, (_, p, _) in table.items())
    prox_sql = f"CASE {node_table}.region_id {whens} ELSE 0 END"
    cost_sql = f"(CAST({node_table}.price_per_gpu_hour AS BIGINT) * {node_table}.gpu_count)"
    price_sql = f"(CASE WHEN {cost_sql} = 0 THEN {PPM} ELSE CAST({int(min_cost) * PPM} AS BIGINT) / {cost_sql} END)"
    total_sql = (
        f"(CAST({node_table}.health_score AS BIGINT) * {w['health']} / {PPM})"
        f" + (CAST({prox_sql} AS BIGINT) * {w['proximity']} / {PPM})"
        f" + ({price_sql} * {w['price']} / {PPM})"
    )
    qs = qs.annotate(total=RawSQL(total_sql, (), output_field=BigIntegerField()))
    # Rank narrow rows (the index holds every column the score reads), then
    # load only the winners in full.
    top = list(qs.order_by("-total", "cost", "pk").values_list("pk", flat=True)[:limit])
    by_pk = {node.pk: node for node in qs.filter(pk__in=top).select_related("gpu_model", "region", "provider")}
    ranked = [by_pk[pk] for pk in top if pk in by_pk]
    out = []
    for i, node in enumerate(ranked, start=1):
        km, prox_ppm, rtt = table.get(node.region_id, (0, 0, 0))
        price_ppm = PPM if node.cost == 0 else min_cost * PPM // node.cost
        parts = [
            Part(
                "health",
                node.health_score,
                w["health"],
                gettext("health %(pct)s%% from checker consensus") % {"pct": node.health_score * 100 // PPM},
            ),
            Part(
                "proximity",
                prox_ppm,
                w["proximity"],
                gettext("%(km)s km from %(region)s, ~%(rtt)s ms round trip")
                % {"km": localize_separators(f"{km:,}"), "region": req.region.name, "rtt": rtt}
                if req.region
                else gettext("no location given: all equal"),
            ),
            Part("price", price_ppm, w["price"], _price_detail(node.cost, min_cost)),
        ]
        # The SQL ordering and the explanation are the same integer formula.
        assert node.total == sum(part.points for part in parts), (node.pk, node.total, parts)
        out.append(
            Candidate(
                node=node, rank=i, total=node.total, parts=parts, distance_km=km, rtt_ms=rtt, cost_per_hour=node.cost
            )
        )
    return {"count": count, "candidates": out, "preference": preference, "weights": w, "min_cost": min_cost}


def _price_detail(cost: int, min_cost: int) -> str:
    if cost == min_cost:
        return gettext("%(cost)s/h, the cheapest match") % {"cost": display_uath(cost)}
    return gettext("%(cost)s/h vs cheapest %(cheapest)s/h") % {
        "cost": display_uath(cost),
        "cheapest": display_uath(min_cost),
    }

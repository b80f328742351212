"""The scheduler (PROTOCOL section 4): keep the nodes a renter could take,
rank them, and say why.

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
match over 100,000 nodes is one query plus one aggregate; the same numbers
come back as annotations and are what the page and the API explain.
"""

import math
from dataclasses import dataclass, field

from django.db.models import BigIntegerField, Case, Count, Exists, F, IntegerField, Min, OuterRef, Value, When

from django.db.models.functions import Cast

from apps.core.amounts import format_uath
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
        (BALANCED, "Balanced"),
        (CHEAPEST, "Cheapest"),
        (EXPERIENCE, "Best experience"),
    ]


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
        return f"strongest on {best.name} ({best.detail})"


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

    prox = Case(
        *[When(region_id=rid, then=Value(p)) for rid, (_, p, _) in table.items()],
        default=Value(0),
        output_field=IntegerField(),
    )
    # Integer division in both SQLite and PostgreSQL (bigint / bigint); all
    # terms are non-negative, so truncation is rounding down.
    price = Case(
        When(cost=0, then=Value(PPM)),
        default=Value(min_cost * PPM, output_field=BigIntegerField()) / Cast(F("cost"), BigIntegerField()),
        output_field=BigIntegerField(),
    )
    ranked = (
        qs.annotate(health_ppm=F("health_score"), prox_ppm=prox, price_ppm=price)
        .annotate(
            total=(
                _big("health_ppm") * Value(w["health"]) / Value(PPM)
                + _big("prox_ppm") * Value(w["proximity"]) / Value(PPM)
                + _big("price_ppm") * Value(w["price"]) / Value(PPM)
            )
        )
        .select_related("gpu_model", "region", "provider")
        .order_by("-total", "cost", "pk")[:limit]
    )
    out = []
    for i, node in enumerate(ranked, start=1):
        km, _, rtt = table.get(node.region_id, (0, 0, 0))
        parts = [
            Part("health", node.health_ppm, w["health"], f"health {node.health_ppm * 100 // PPM}% from checker consensus"),
            Part(
                "proximity", node.prox_ppm, w["proximity"],
                f"{km:,} km from {req.region.name}, ~{rtt} ms round trip" if req.region else "no location given: all equal",
            ),
            Part("price", node.price_ppm, w["price"], _price_detail(node.cost, min_cost)),
        ]
        out.append(Candidate(node=node, rank=i, total=node.total, parts=parts, distance_km=km, rtt_ms=rtt,
                             cost_per_hour=node.cost))
    return {"count": count, "candidates": out, "preference": preference, "weights": w, "min_cost": min_cost}


def _big(name):
    # PostgreSQL multiplies two integers as a 32-bit integer; a ppm score
    # times a ppm weight needs 64 bits.
    return Cast(F(name), BigIntegerField())


def _price_detail(cost: int, min_cost: int) -> str:
    if cost == min_cost:
        return f"{format_uath(cost)}/h, the cheapest match"
    return f"{format_uath(cost)}/h vs cheapest {format_uath(min_cost)}/h"


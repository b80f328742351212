"""The catalogue's read side: filtered, sorted, paginated nodes with their
recent uptime, shared by the page and the API so both show the same list.

Pages are read two ways. A numbered page (``?page=N``, what a shared link
carries) skips N - 1 pages of rows. A cursor continues after the last row of
the page before it, by that row's sort key and id, so the hundredth page
costs what the first does and a node listed meanwhile is neither skipped
nor shown twice; every page hands out the cursor of the next."""

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal

from django.core import signing
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import connections
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

# Each sort as its keys, (column, descending), ending with the id so that no
# two nodes tie: the order of a page and the position a cursor holds.
PRICE, HEALTH, PK = "price_per_gpu_hour", "health_score", "pk"
SORT_KEYS = {
    "price": [(PRICE, False), (HEALTH, True), (PK, False)],
    "-price": [(PRICE, True), (HEALTH, True), (PK, False)],
    "health": [(HEALTH, True), (PRICE, False), (PK, False)],
    "vram": [("gpu_model__vram_gb", True), (PRICE, False), (PK, False)],
    "proximity": [("distance", False), (PRICE, False), (PK, False)],
}
# Nearest-first without a place to be near: every node is as near.
UNPLACED = [(PRICE, False), (PK, False)]


@dataclass(frozen=True)
class Sort:
    """The order of a catalogue listing. ``shape`` names it for cursors: a
    cursor taken in one order means nothing in another (nor, for
    nearest-first, from another place)."""

    keys: list[tuple[str, bool]]
    shape: str

    def order_by(self) -> list:
        return [F(col).desc() if desc else F(col).asc() for col, desc in self.keys]

    @property
    def columns(self) -> list[str]:
        return [col for col, _ in self.keys]


def _sort(filters: dict, table: dict, near) -> Sort:
    sort = filters.get("sort") or "price"
    if sort not in SORT_KEYS:
        sort = "price"
    if sort == "proximity" and not table:
        return Sort(UNPLACED, "proximity")
    return Sort(SORT_KEYS[sort], f"proximity:{near.code}" if sort == "proximity" else sort)


def _after(keys: list[tuple[str, bool]], values) -> Q:
    """The rows strictly after ``values`` in the order of ``keys``: a
    lexicographic comparison written out (the directions differ, so a row
    value comparison cannot say it), led by a plain bound on the first key
    so that an index on it is read from the cursor on, not from the start."""
    after, tied = Q(), Q()
    for (col, desc), value in zip(keys, values, strict=True):
        after |= tied & Q(**{f"{col}__{'lt' if desc else 'gt'}": value})
        tied &= Q(**{col: value})
    col, desc = keys[0]
    return Q(**{f"{col}__{'lte' if desc else 'gte'}": values[0]}) & after


def _offers(filters: dict):
    """The listed nodes that pass ``filters``, before the "free to rent now"
    condition on rentals; with the proximity table and the sort."""
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
    return qs, near, table, _sort(filters, table, near)


def _free_only(filters: dict) -> bool:
    return filters.get("availability", "free") == "free"


def _rented():
    return Exists(Rental.objects.filter(node=OuterRef("pk"), status=RentalStatus.ACTIVE))


def _listed(filters: dict):
    qs, near, table, sort = _offers(filters)
    qs = qs.annotate(rented=_rented())
    if _free_only(filters):
        qs = qs.filter(rented=False)
    return qs.order_by(*sort.order_by()), near, table, sort


def nodes(filters: dict):
    """``filters`` are cleaned CatalogueForm values (all optional)."""
    qs, near, table, _ = _listed(filters)
    return qs.select_related("gpu_model", "region"), near, table


# The filters a count depends on (not the order, the place to be near or the page).
COUNTED_FILTERS = ("availability", "gpu", "min_vram", "count", "region", "max_price", "min_health")
# How long a count is kept per filter set. An exact count reads every listed
# node's index entry: on PostgreSQL at 100,000 nodes the two counts a page of
# free nodes needs took 25 ms, half the page, however selective the page's
# own query. A count a few seconds old on a network that changes by the
# minute misleads nobody; the list itself is always read fresh, and a
# cursor, not the count, says whether there is a next page.
COUNT_SECONDS = 10


def _count_key(filters: dict) -> str:
    counted = sorted((k, str(filters[k])) for k in COUNTED_FILTERS if filters.get(k) not in (None, ""))
    digest = hashlib.sha256(json.dumps(counted).encode()).hexdigest()[:32]
    return f"marketplace:catalogue-count:{digest}"


def count(filters: dict) -> int:
    """How many nodes ``nodes(filters)`` lists: exact when counted, and
    kept per filter set for ``COUNT_SECONDS``."""
    key = _count_key(filters)
    found = cache.get(key)
    if found is None:
        found = exact_count(filters)
        cache.set(key, found, COUNT_SECONDS)
    return found


def exact_count(filters: dict) -> int:
    """How many nodes ``nodes(filters)`` lists, exactly: the offers, less
    the rented ones among them, by the plan each engine runs fastest.

    SQLite counts the offers from the node index alone, then the rented ones
    among them either by asking each offer (a few) or by looking up the
    active rentals' nodes (many offers: a rental lookup costs a few times an
    offer probe). PostgreSQL reads a table row for each, so it reads the
    offers once, looking each up in the active rentals' nodes read once
    into a hash (a subplan): 18 ms at 100,000 nodes, where the two counts
    read the offers twice for 30 ms (and one query costs SQLite 22 ms, not 5)."""
    # Without "near": distances neither filter nor count, and placing them
    # costs two region queries.
    qs = _offers({k: v for k, v in filters.items() if k != "near"})[0].order_by()
    if not _free_only(filters):
        return qs.count()
    active = Rental.objects.filter(status=RentalStatus.ACTIVE)
    if connections[qs.db].vendor == "postgresql":
        found = qs.aggregate(offers=Count("pk"), rented=Count("pk", filter=Q(pk__in=active.values("node_id"))))
        return found["offers"] - found["rented"]
    total = qs.count()
    if total and total <= 4 * active.count():
        return qs.filter(~_rented()).count()
    return total - (qs.filter(pk__in=active.values("node_id")).count() if total else 0)


# --- Cursors ------------------------------------------------------------------

CURSOR_SALT = "marketplace.catalogue.cursor"
CURSOR_VERSION = 1
MAX_CURSOR_LENGTH = 300


class BadCursor(ValueError):
    """A cursor this catalogue did not give out, or one for another order."""


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after the row with sort key ``key`` (id last),
    and which page that is (shown as "page N", and for "previous")."""

    key: tuple[int, ...]
    number: int


def encode_cursor(sort: Sort, key, number: int) -> str:
    # Signed, not encrypted: a cursor holds a price, a score and an id the
    # page already shows. Signed so that a keyset read starts only where a
    # page of this catalogue ended, never at values a client made up; the
    # sort's shape inside keeps a cursor to the order it was taken in.
    return signing.Signer(salt=CURSOR_SALT).sign_object([CURSOR_VERSION, sort.shape, list(key), number])


def decode_cursor(raw: str, sort: Sort) -> Cursor:
    """Raises :class:`BadCursor` for anything but a cursor ``encode_cursor``
    gave out for this sort."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_CURSOR_LENGTH:
        raise BadCursor
    try:
        version, shape, key, number = signing.Signer(salt=CURSOR_SALT).unsign_object(raw)
    except (signing.BadSignature, ValueError, TypeError):
        raise BadCursor from None
    ints = [number, *key] if isinstance(key, list) else [None]
    if version != CURSOR_VERSION or shape != sort.shape or not all(type(v) is int for v in ints):
        raise BadCursor
    if len(key) != len(sort.keys) or number < 2:
        raise BadCursor
    return Cursor(tuple(key), number)


# --- Pages --------------------------------------------------------------------


class _Pages(Paginator):
    """Pages of sort keys (id last); the count is ``count(filters)``."""

    def __init__(self, object_list, per_page, filters):
        super().__init__(object_list, per_page)
        self._filters = filters

    @cached_property
    def count(self):
        return count(self._filters)

    def page(self, number):
        """Page ``number`` with its rows read whole, and whether more follow,
        by reading one row past it: the count may be a few seconds old
        (``COUNT_SECONDS``), and Django's paginator would cut the last page
        it knows of at that count. The count only says which page is last."""
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        page = self._get_page(rows[: self.per_page], number, self)
        page.more = len(rows) > self.per_page
        return page


class CataloguePage(Page):
    """A page of node ids in order, with the cursor of the page after it
    (None on the last page)."""

    def __init__(self, keys: list[tuple], number: int, paginator, sort: Sort, more: bool):
        super().__init__([k[-1] for k in keys], number, paginator)
        self.next_cursor = encode_cursor(sort, keys[-1], number + 1) if more and keys else None

    def has_next(self):
        return self.next_cursor is not None

    # Plain arithmetic: a cursor's page number is a label, and the count may
    # have moved since the cursor was given out.
    def next_page_number(self):
        return self.number + 1

    def previous_page_number(self):
        return self.number - 1


# Past this many rows into a grouped sort, one plain sorted query is cheaper
# than reading that deep into every group.
GROUPED_DEPTH = 4_000


class _Grouped:
    """The sort keys of ``qs``, read group by group where one sorted query
    over every listed node would sort them all (100,000 at scale) rather
    than read an index in order.

    A group is a GPU model (most VRAM first), a region (nearest first) or,
    for "all listed", a (status, paused) pair: within one, an index already
    keeps the nodes in the order of the sort's remaining keys, so each
    group is read from its index only as deep as the page needs, and the
    groups are merged by the full sort key: the same order, from a few
    hundred index entries. After a cursor, the groups wholly before it are
    left out and the others are read from it on, so a page reached by
    cursor reads what the first does, at any depth.

    The groups are read as one ``UNION ALL`` of index-ordered, limited
    reads, merged and cut to the page by the database: a query per group
    measured slower than sorting every node, for its per-query cost."""

    def __init__(self, qs, groups: list[tuple[int | None, dict]], sort: Sort):
        self.qs, self.groups, self.sort = qs, groups, sort
        # Led: each group holds one value of the sort's first key (a GPU
        # model's VRAM, a region's distance), read as that constant.
        self.led = groups[0][0] is not None
        self.inner = sort.keys[1:] if self.led else sort.keys

    def __getitem__(self, window: slice) -> list[tuple]:
        start, stop = window.start or 0, window.stop
        if stop is None or stop > GROUPED_DEPTH:
            return list(self.qs.values_list(*self.sort.columns)[window])
        return self.read(stop - start, start)

    def read(self, n: int, skip: int = 0, after: tuple | None = None) -> list[tuple]:
        """``n`` keys in order after the first ``skip`` (after ``after``, if given)."""
        if n <= 0:
            return []  # an empty page (nothing listed): a LIMIT 0 arm does not compile
        arms = []
        for lead, match in self.groups:
            where = None
            if after is not None and self.led:
                _, desc = self.sort.keys[0]
                if (lead > after[0]) if desc else (lead < after[0]):
                    continue  # the whole group is before the cursor
                if lead == after[0]:
                    where = _after(self.inner, after[1:])
            elif after is not None:
                where = _after(self.inner, after)
            arms.append((lead, match, where))
        if not arms:
            return []
        if self.led and len(arms) > 1:
            # Every row of the groups that lead (the nearest region, the
            # model with the most VRAM; ties together) comes before any row
            # of the others: when they alone hold the window, it is theirs,
            # read from one index rather than as deep from every group.
            _, desc = self.sort.keys[0]
            first = (max if desc else min)(lead for lead, _, _ in arms)
            leading = [arm for arm in arms if arm[0] == first]
            if len(leading) < len(arms):
                rows = self._union(leading, n, skip)
                if len(rows) == n:
                    return rows
        return self._union(arms, n, skip)

    def _arm(self, match: dict, where: Q | None, depth: int):
        part = self.qs.filter(**match)
        if where is not None:
            part = part.filter(where)
        inner = Sort(self.inner, self.sort.shape)
        return part.order_by(*inner.order_by()).values_list(*inner.columns)[:depth]

    def _union(self, arms: list[tuple[int | None, dict, Q | None]], n: int, skip: int) -> list[tuple]:
        """The arms (each a group's lead value or None, its match and the
        cursor's condition or None) as one query: ``UNION ALL``, ordered by
        the sort's keys by position, ``n`` rows after ``skip``. Written out
        because Django cannot slice the arms of a union on SQLite."""
        connection = connections[self.qs.db]
        shared = {}
        sqls, params = [], []
        for i, (lead, match, where) in enumerate(arms):
            if where is None and len(match) == 1:
                # Arms that differ only in their group's id (a model's, a
                # region's) share one compiled query with that id swapped
                # in: compiling fifteen costs more than running them.
                ((column, value),) = match.items()
                if column not in shared:
                    sql, arm_params = self._compile(self._arm({column: GROUP_ID}, None, skip + n), connection)
                    at = [j for j, v in enumerate(arm_params) if v == GROUP_ID]
                    shared[column] = (sql, list(arm_params), at[0]) if len(at) == 1 else None
                if shared[column]:
                    sql, arm_params, at = shared[column]
                    arm_params = [*arm_params[:at], value, *arm_params[at + 1 :]]
                else:
                    sql, arm_params = self._compile(self._arm(match, None, skip + n), connection)
            else:
                sql, arm_params = self._compile(self._arm(match, where, skip + n), connection)
            if lead is None:
                sqls.append(f"SELECT g{i}.* FROM ({sql}) g{i}")
            else:
                sqls.append(f"SELECT CAST(%s AS bigint), g{i}.* FROM ({sql}) g{i}")
                params.append(lead)
            params.extend(arm_params)
        order = ", ".join(f"{i} {'DESC' if desc else 'ASC'}" for i, (_, desc) in enumerate(self.sort.keys, 1))
        with connection.cursor() as cursor:
            cursor.execute(f"{' UNION ALL '.join(sqls)} ORDER BY {order} LIMIT %s OFFSET %s", [*params, n, skip])
            return [tuple(row) for row in cursor.fetchall()]

    @staticmethod
    def _compile(qs, connection) -> tuple[str, tuple]:
        return qs.query.get_compiler(connection=connection).as_sql()


# Stands for a group's id in a shared arm's compiled query: no id is negative.
GROUP_ID = -7_319_046_581


def _groups(filters: dict, table: dict) -> list[tuple[int | None, dict]] | None:
    """The groups a sort is read in (see :class:`_Grouped`), each with its
    value of the sort's first key when the groups lead the order, or None
    when one sorted query reads an index in order already."""
    sort = filters.get("sort") or "price"
    if sort == "vram":
        # Read by (model, price) with status and paused filtered in the index.
        return [(vram, {"gpu_model_id": pk}) for pk, vram in GpuModel.objects.values_list("pk", "vram_gb")]
    if sort == "proximity" and table:
        # Read by (region, price) the same way; every region is in the table.
        return [(km, {"region_id": rid}) for rid, (km, _, _) in table.items()]
    if sort in ("price", "-price") and not _free_only(filters):
        # Online or degraded, paused or not: four ranges of the offers index,
        # each in price order (a list of statuses is not, and is sorted whole).
        return [(None, {"status": status, "paused": paused}) for status in LISTED for paused in (False, True)]
    return None


def window(filters: dict, number=None, cursor: str | None = None, *, per_page: int | None = None, strict=False):
    """The ids of one page of ``nodes(filters)`` as a :class:`CataloguePage`:
    the page after ``cursor`` if given (:class:`BadCursor` if it is not one
    this catalogue gave out for this sort), else page ``number`` (an
    out-of-range or unreadable number is the nearest page, or with
    ``strict`` Django's ``InvalidPage``). Also the place nearest-first
    measures from, and its region table."""
    per_page = per_page or PER_PAGE
    qs, near, table, sort = _listed(filters)
    groups = _groups(filters, table)
    grouped = _Grouped(qs, groups, sort) if groups is not None else None
    pages = _Pages(grouped if grouped else qs.values_list(*sort.columns), per_page, filters)
    if cursor is not None:
        at = decode_cursor(cursor, sort)
        if grouped:
            keys = grouped.read(per_page + 1, after=at.key)
        else:
            keys = list(qs.filter(_after(sort.keys, at.key)).values_list(*sort.columns)[: per_page + 1])
        return CataloguePage(keys[:per_page], at.number, pages, sort, len(keys) > per_page), near, table
    p = pages.page(number) if strict else pages.get_page(number)
    return CataloguePage(list(p.object_list), p.number, pages, sort, p.more), near, table


def page(filters: dict, number, cursor: str | None = None) -> tuple:
    """The catalogue page a visitor asked for, its nodes decorated for the
    cards. A cursor that is not one this catalogue gave out (tampered,
    truncated, from another sort or an older key) opens the first page:
    a shared link never errors."""
    try:
        p, near, table = window(filters, number, cursor or None)
    except BadCursor:
        p, near, table = window(filters, 1)
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

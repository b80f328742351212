"""The catalogue's list and count against a plain-Python reading of the
rules, on a shelf with rented, paused and degraded nodes placed around a
page boundary.

What a visitor sees: listed nodes are online or degraded; "free" (the
default) keeps only online, unpaused nodes without an active rental;
sorts are price (then health, best first), -price (then health), health
(then price); ties by id. The page count is exact.
"""

import pytest

from apps.core.amounts import ath, parse_ath
from apps.core.models import GpuNode, NodeStatus
from apps.marketplace import catalogue, rentals
from apps.marketplace.models import RentalMode

from ..factories import UserFactory, make_node
from .conftest import online

PRICES = ("1", "1.5", "2")


@pytest.fixture
def shelf(clock, renter):
    provider = UserFactory()
    nodes = []
    for i in range(27):
        node, _ = make_node(
            provider,
            name=f"n{i:02}",
            price_ath=PRICES[i % 3],
            region=("eu-west", "us-east")[i % 2],
        )
        nodes.append(online(node, 900_000 + (i * 37 % 10) * 10_000))
    # Five rentals (more than enough offers to count the rented ones from
    # the rentals' side for the whole shelf, few enough offers in a narrow
    # filter to ask each offer instead).
    for i in (0, 3, 19, 20, 21):
        rentals.rent(renter, nodes[i].pk, mode=RentalMode.RESERVED, epochs_=3, image="ubuntu")
    GpuNode.objects.filter(pk=nodes[5].pk).update(paused=True)
    GpuNode.objects.filter(pk=nodes[8].pk).update(status=NodeStatus.DEGRADED)
    GpuNode.objects.filter(pk=nodes[9].pk).update(status=NodeStatus.OFFLINE)
    return {"rented": {nodes[i].pk for i in (0, 3, 19, 20, 21)}}


def expected(shelf, filters):
    rows = [n for n in GpuNode.objects.all() if n.status in (NodeStatus.ONLINE, NodeStatus.DEGRADED)]
    if filters.get("availability", "free") == "free":
        rows = [n for n in rows if n.status == NodeStatus.ONLINE and not n.paused and n.pk not in shelf["rented"]]
    if filters.get("region"):
        rows = [n for n in rows if n.region.code == filters["region"]]
    if filters.get("max_price") is not None:
        rows = [n for n in rows if n.price_per_gpu_hour <= filters["max_price"]]
    key = {
        "price": lambda n: (n.price_per_gpu_hour, -n.health_score, n.pk),
        "-price": lambda n: (-n.price_per_gpu_hour, -n.health_score, n.pk),
        "health": lambda n: (-n.health_score, n.price_per_gpu_hour, n.pk),
    }[filters.get("sort", "price")]
    return [n.name for n in sorted(rows, key=key)]


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"sort": "health"},
        {"sort": "-price"},
        {"availability": "all"},
        {"availability": "all", "sort": "health"},
        {"region": "eu-west", "max_price": parse_ath("1.5")},
        {"region": "us-east", "sort": "-price"},
    ],
)
def test_pages_and_count_match_the_rules(shelf, filters):
    want = expected(shelf, filters)
    assert len(want) > 0
    pages = (len(want) - 1) // catalogue.PER_PAGE + 1
    seen = []
    for number in range(1, pages + 1):
        page, rows, _ = catalogue.page(filters, number)
        assert page.paginator.count == len(want)
        assert page.paginator.num_pages == pages
        seen += [n.name for n in rows]
        assert all(n.rented == (n.pk in shelf["rented"]) for n in rows)
    assert seen == want
    assert [n.name for n in catalogue.nodes(filters)[0]] == want


def test_count_is_exact_both_ways(shelf):
    """The shelf's free count (many offers) and a narrow filter's (few)."""
    assert catalogue.count({}) == 27 - 5 - 3  # rented, paused, degraded, offline
    narrow = {"region": "us-east", "max_price": ath("1")}  # n03 (rented), n09 (offline), n15, n21 (rented)
    assert catalogue.count(narrow) == 1
    assert catalogue.count({**narrow, "availability": "all"}) == 3


def test_a_count_is_kept_a_few_seconds_per_filter_set_and_the_list_stays_fresh(shelf, renter, monkeypatch):
    """A page's count is the exact count of at most ``COUNT_SECONDS`` ago,
    kept per filter set (the order, the place to be near and the page share
    it); the nodes listed are always read afresh. (On both caches the suite
    runs with: local memory, and Redis with the PostgreSQL pass.)"""
    import time

    monkeypatch.setattr(catalogue, "COUNT_SECONDS", 1)
    assert catalogue.count({}) == 19
    counted_at = time.monotonic()
    node = GpuNode.objects.get(name="n01")
    rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=3, image="ubuntu")
    # Kept: the same filters in another order, near elsewhere, on another page.
    assert catalogue.count({"sort": "-price", "near": "us-east", "page": 2}) == 19
    assert catalogue.exact_count({}) == 18
    assert node.pk not in {n.pk for n in catalogue.nodes({})[0]}
    # Another filter set is counted on its own.
    assert catalogue.count({"region": "eu-west"}) == catalogue.exact_count({"region": "eu-west"})
    time.sleep(max(0.0, counted_at + 1.2 - time.monotonic()))
    assert catalogue.count({}) == 18


def test_a_page_lists_every_row_it_has_when_its_count_is_behind(shelf):
    """Nodes listed after the count was taken: the count still says 19 (one
    page of 20), but page 1 shows its whole 20 rows and offers a next page,
    and that page shows the rest."""
    assert catalogue.count({}) == 19
    provider = UserFactory()
    for i in range(3):
        node, _ = make_node(provider, name=f"late{i}", price_ath="0.5", region="eu-west")
        online(node, 950_000)
    first, rows, _ = catalogue.page({}, 1)
    assert first.paginator.count == 19
    assert len(rows) == 20 and first.has_next()
    assert [n.name for n in rows[:3]] == ["late0", "late1", "late2"]
    second, more, _ = catalogue.page({}, None, first.next_cursor)
    assert len(more) == 2 and not second.has_next()

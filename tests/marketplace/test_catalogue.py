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

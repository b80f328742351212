"""The scheduler on a hand-built network, against a worked example.

The renter is in Frankfurt (eu-central, 50.11 N 8.68 E) and asks for one
H100 80GB. Candidates (one GPU each):

    node  region               price/h  health      distance   proximity ppm
    A     eu-central Frankfurt 2.0 ATH  990,000         0 km   1,000,000
    B     eu-west Dublin       1.5 ATH  950,000     1,088 km     945,640
    C     us-east Virginia     1.0 ATH  1,000,000   6,554 km     672,545

proximity = 1,000,000 x (20,015 - km) // 20,015; price = cheapest / own
hourly cost: A 500,000, B 666,666, C 1,000,000. Each part's points are
score x weight // 1,000,000; the total is their sum.

Balanced (health 40%, proximity 30%, price 30%):
    A 396,000 + 300,000 + 150,000 = 846,000
    B 380,000 + 283,692 + 199,999 = 863,691
    C 400,000 + 201,763 + 300,000 = 901,763     ->  C, B, A
Cheapest (20 / 10 / 70):
    A 198,000 + 100,000 + 350,000 = 648,000
    B 190,000 +  94,564 + 466,666 = 751,230
    C 200,000 +  67,254 + 700,000 = 967,254     ->  C, B, A
Best experience (50 / 40 / 10):
    A 495,000 + 400,000 +  50,000 = 945,000
    B 475,000 + 378,256 +  66,666 = 919,922
    C 500,000 + 269,018 + 100,000 = 869,018     ->  A, B, C
Balanced with at most 50 ms estimated round trip (5 + km x 3 // 200: A 5,
B 21, C 103 ms) drops C; the cheapest is now B at 1.5, so A's price score
is 750,000:
    A 396,000 + 300,000 + 225,000 = 921,000
    B 380,000 + 283,692 + 300,000 = 963,692     ->  B, A

Never candidates: an offline-pending H100, a rented H100, a paused H100,
an A100 (other model), the renter's own H100, a 2-GPU node above the
budget when a budget is set.
"""

import pytest

from apps.core.amounts import ath
from apps.core.models import GpuModel, GpuNode, Region
from apps.marketplace import matching, rentals
from apps.marketplace.matching import Preference, Requirements
from apps.marketplace.models import RentalMode

from ..factories import make_node
from .conftest import online


@pytest.fixture
def network(clock, renter):
    a = online(make_node(name="A", region="eu-central", price_ath="2")[0], 990_000)
    b = online(make_node(name="B", region="eu-west", price_ath="1.5")[0], 950_000)
    c = online(make_node(name="C", region="us-east", price_ath="1")[0], 1_000_000)
    make_node(name="pending", region="eu-central", price_ath="0.5")  # pending verification
    rented = online(make_node(name="rented", region="eu-central", price_ath="0.5")[0])
    other = make_node(name="someone-else")[0].provider
    from apps.accounts.services import open_wallet

    from ..factories import fund

    fund(open_wallet(other), ath(100))
    rentals.rent(other, rented.pk, mode=RentalMode.RESERVED, epochs_=5, image="ubuntu")
    paused = online(make_node(name="paused", region="eu-central", price_ath="0.5")[0])
    GpuNode.objects.filter(pk=paused.pk).update(paused=True)
    online(make_node(name="a100", gpu="a100-80gb", region="eu-central", price_ath="0.5")[0])
    online(make_node(renter, name="mine", region="eu-central", price_ath="0.5")[0])
    return {"A": a, "B": b, "C": c}


def run(renter, **kw):
    req = Requirements(
        gpu_model=GpuModel.objects.get(slug="h100-80gb"),
        region=Region.objects.get(code="eu-central"),
        renter=renter,
        **kw,
    )
    return matching.match(req, limit=10)


def table(result):
    return [(c.node.name, c.total, [p.points for p in c.parts]) for c in result["candidates"]]


def test_balanced(network, renter):
    result = run(renter, preference=Preference.BALANCED)
    assert result["count"] == 3
    assert table(result) == [
        ("C", 901_763, [400_000, 201_763, 300_000]),
        ("B", 863_691, [380_000, 283_692, 199_999]),
        ("A", 846_000, [396_000, 300_000, 150_000]),
    ]
    c = result["candidates"][0]
    assert (c.distance_km, c.rtt_ms, c.cost_per_hour) == (6_554, 103, ath(1))
    assert [p.score for p in c.parts] == [1_000_000, 672_545, 1_000_000]
    assert "6,554 km from Europe Central (Frankfurt), ~103 ms round trip" in c.parts[1].detail
    assert "the cheapest match" in c.parts[2].detail


def test_cheapest(network, renter):
    assert table(run(renter, preference=Preference.CHEAPEST)) == [
        ("C", 967_254, [200_000, 67_254, 700_000]),
        ("B", 751_230, [190_000, 94_564, 466_666]),
        ("A", 648_000, [198_000, 100_000, 350_000]),
    ]


def test_best_experience(network, renter):
    assert table(run(renter, preference=Preference.EXPERIENCE)) == [
        ("A", 945_000, [495_000, 400_000, 50_000]),
        ("B", 919_922, [475_000, 378_256, 66_666]),
        ("C", 869_018, [500_000, 269_018, 100_000]),
    ]


def test_latency_limit_drops_far_nodes_and_rescales_price(network, renter):
    assert table(run(renter, preference=Preference.BALANCED, max_latency_ms=50)) == [
        ("B", 963_692, [380_000, 283_692, 300_000]),
        ("A", 921_000, [396_000, 300_000, 225_000]),
    ]


def test_a_short_list_is_the_head_of_the_full_ranking(network, renter):
    """The winners are ranked first and loaded after: the cheaper nodes a
    renter cannot take (rented, paused, own, pending) never slip in."""
    full = table(run(renter, preference=Preference.BALANCED))
    for limit in (1, 2):
        req = Requirements(
            gpu_model=GpuModel.objects.get(slug="h100-80gb"),
            region=Region.objects.get(code="eu-central"),
            renter=renter,
            preference=Preference.BALANCED,
        )
        result = matching.match(req, limit=limit)
        assert result["count"] == 3
        assert table(result) == full[:limit]
        assert [c.rank for c in result["candidates"]] == list(range(1, limit + 1))


def test_budget_and_vram_filters(network, renter):
    assert [c.node.name for c in run(renter, max_price_per_gpu_hour=ath(1) + 500_000)["candidates"]] == ["C", "B"]
    by_vram = matching.match(Requirements(min_vram_gb=80, renter=renter, preference=Preference.CHEAPEST), limit=10)
    assert {c.node.name for c in by_vram["candidates"]} == {"A", "B", "C", "a100"}
    assert matching.match(Requirements(min_vram_gb=100, renter=renter))["count"] == 0
    assert run(renter, gpu_count=2)["count"] == 0


def test_distances_are_great_circle(db):
    fra, dub, tokyo, sydney = (
        Region.objects.get(code=c) for c in ("eu-central", "eu-west", "ap-northeast", "ap-oceania")
    )
    assert matching.distance_km(fra, fra) == 0
    assert matching.distance_km(fra, dub) == matching.distance_km(dub, fra) == 1_088
    assert 9_300 < matching.distance_km(fra, tokyo) < 9_400
    assert 7_700 < matching.distance_km(tokyo, sydney) < 7_900

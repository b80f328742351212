"""The VRAM and proximity sorts walk GPU models and regions group by group,
and the price sorts of "all listed" walk (status, paused) pairs (see
``catalogue._Grouped``); every page must list exactly the nodes, in exactly
the order, that sorting the whole catalogue gives."""

import random

import pytest
from django.contrib.auth import get_user_model

from apps.core.models import GpuModel, GpuNode, Region
from apps.marketplace import catalogue


@pytest.fixture
def market(genesis):
    rng = random.Random(3)
    provider = get_user_model().objects.create(username="grouped-provider")
    models, regions = list(GpuModel.objects.all()), list(Region.objects.all())
    GpuNode.objects.bulk_create(
        GpuNode(
            provider=provider,
            name=f"g{i}",
            gpu_model=rng.choice(models),
            gpu_count=rng.choice((1, 2, 8)),
            vcpu=16,
            ram_gb=64,
            region=rng.choice(regions),
            bandwidth_mbps=1000,
            # Few distinct prices: ties must fall back to the id.
            price_per_gpu_hour=rng.choice((1_000_000, 1_500_000, 2_000_000)),
            endpoint="http://127.0.0.1:1/health",
            status=rng.choice(("online", "online", "degraded", "pending")),
            paused=rng.random() < 0.1,
            health_score=rng.choice((900_000, 990_000)),
        )
        for i in range(200)
    )


@pytest.mark.parametrize("availability", ["free", "all"])
@pytest.mark.parametrize(
    "extra",
    [
        {"sort": "vram"},
        {"sort": "proximity", "near": "eu-central"},
        {"sort": "vram", "min_vram": 40, "count": 2},
        {"sort": "price"},
        {"sort": "-price", "count": 2},
    ],
)
def test_grouped_pages_match_the_full_sort(market, monkeypatch, availability, extra):
    monkeypatch.setattr(catalogue, "PER_PAGE", 7)
    filters = {"availability": availability, **extra}
    everything = list(catalogue.nodes(filters)[0].values_list("pk", flat=True))
    assert len(everything) > 20
    listed = []
    for number in range(1, -(-len(everything) // 7) + 1):
        p, rows, _ = catalogue.page(filters, number)
        listed += [n.pk for n in rows]
    assert listed == everything


def test_a_page_deeper_than_the_walk_uses_the_full_sort(market, monkeypatch):
    monkeypatch.setattr(catalogue, "PER_PAGE", 7)
    monkeypatch.setattr(catalogue, "GROUPED_DEPTH", 10)
    filters = {"availability": "all", "sort": "vram"}
    everything = list(catalogue.nodes(filters)[0].values_list("pk", flat=True))
    _, rows, _ = catalogue.page(filters, 3)
    assert [n.pk for n in rows] == everything[14:21]


@pytest.mark.parametrize("sort", ["price", "-price", "vram", "proximity"])
def test_a_grouped_sort_that_lists_nothing_is_an_empty_page(client, genesis, sort):
    # No node online: every filter of "all listed" matches nothing. The page
    # read nothing from each group instead of failing to compile LIMIT 0.
    r = client.get("/marketplace/", {"availability": "all", "sort": sort, "near": "eu-west"})
    assert r.status_code == 200
    assert 'data-testid="result-count">0 nodes<' in r.content.decode()

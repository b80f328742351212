"""Keyset pages of the catalogue: each page continues after the last node
of the page before it (by the sort's key, ties by id), so walking the
"next" links lists every node exactly once, in the order of the full sort,
even while nodes are listed in between; a numbered page (a shared link)
still works; a cursor the catalogue did not give out is refused by the API
and ignored by the web page."""

import random
import re
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APIClient

from apps.core.models import GpuModel, GpuNode, Region
from apps.marketplace import catalogue
from apps.marketplace.models import Rental

PER_PAGE = 7
SORTS = [
    {"sort": "price"},
    {"sort": "-price"},
    {"sort": "health"},
    {"sort": "vram"},
    {"sort": "proximity", "near": "eu-central"},
    {"sort": "proximity"},  # no place to be near: by price
    {"sort": "health", "min_vram": 40, "count": 2},
]


def _nodes(provider, rng, n, prefix):
    models, regions = list(GpuModel.objects.all()), list(Region.objects.all())
    return GpuNode.objects.bulk_create(
        GpuNode(
            provider=provider,
            name=f"{prefix}{i}",
            gpu_model=rng.choice(models),
            gpu_count=rng.choice((1, 2, 8)),
            vcpu=16,
            ram_gb=64,
            region=rng.choice(regions),
            bandwidth_mbps=1000,
            # Few distinct prices and scores: most sort keys tie up to the id.
            price_per_gpu_hour=rng.choice((1_000_000, 1_500_000, 2_000_000)),
            endpoint="http://127.0.0.1:1/health",
            status=rng.choice(("online", "online", "online", "degraded", "pending")),
            paused=rng.random() < 0.1,
            health_score=rng.choice((900_000, 990_000)),
        )
        for i in range(n)
    )


@pytest.fixture
def market(genesis, monkeypatch):
    monkeypatch.setattr(catalogue, "PER_PAGE", PER_PAGE)
    rng = random.Random(5)
    provider = get_user_model().objects.create(username="keyset-provider")
    nodes = _nodes(provider, rng, 160, "k")
    renter = get_user_model().objects.create(username="keyset-renter")
    Rental.objects.bulk_create(
        Rental(
            renter=renter,
            node=node,
            gpu_count=1,
            mode="reserved",
            image="ubuntu",
            start_epoch=1,
            end_epoch=100,
            settled_through=0,
            price_per_gpu_hour=1,
            epoch_seconds=60,
            price_per_epoch=1,
            escrow_total=100,
        )
        for node in rng.sample(nodes, 12)
    )
    return {"provider": provider, "rng": rng}


def ordered(filters) -> list[int]:
    return list(catalogue.nodes(filters)[0].values_list("pk", flat=True))


def walk(filters, between=None) -> list[int]:
    """The first page, then each next page by its cursor; ``between(seen)``
    runs before each page after the first."""
    p, rows, _ = catalogue.page(filters, 1)
    seen = [n.pk for n in rows]
    while p.next_cursor:
        if between:
            between(seen)
        p, rows, _ = catalogue.page(filters, None, p.next_cursor)
        seen += [n.pk for n in rows]
    return seen


@pytest.mark.parametrize("availability", ["free", "all"])
@pytest.mark.parametrize("extra", SORTS)
def test_walking_the_cursors_lists_every_node_once_in_order(market, availability, extra):
    filters = {"availability": availability, **extra}
    everything = ordered(filters)
    assert len(everything) > 3 * PER_PAGE
    assert walk(filters) == everything


@pytest.mark.parametrize("extra", SORTS)
def test_nodes_listed_between_pages_are_neither_repeated_nor_skipped(market, extra):
    """New nodes that sort after the walk's position appear once, in order;
    those that sort before it are behind the walk and stay out of it (no
    node is repeated, none ahead of the walk is missed)."""
    filters = {"availability": "all", **extra}
    provider, rng = market["provider"], market["rng"]
    added, behind = set(), set()

    def list_more(seen):
        new = {n.pk for n in _nodes(provider, rng, 6, f"new{len(seen)}-")}
        now = ordered(filters)
        added.update(new)
        behind.update(pk for pk in now[: now.index(seen[-1])] if pk in new)

    seen = walk(filters, list_more)
    assert behind and added & set(seen)  # both cases occur
    assert seen == [pk for pk in ordered(filters) if pk not in behind]


def test_a_numbered_page_gives_the_cursor_to_the_one_after_it(market):
    """A shared ``?page=3`` reads by offset; its "next" continues by cursor."""
    filters = {"availability": "all", "sort": "health"}
    everything = ordered(filters)
    p, rows, _ = catalogue.page(filters, 3)
    assert [n.pk for n in rows] == everything[14:21] and p.number == 3
    p, rows, _ = catalogue.page(filters, None, p.next_cursor)
    assert [n.pk for n in rows] == everything[21:28] and p.number == 4 and p.previous_page_number() == 3


@pytest.mark.parametrize("extra", SORTS)
def test_a_deep_page_reads_no_more_queries_than_the_first(market, client, extra, django_assert_max_num_queries):
    """The page as a visitor gets it (count, ids, cards, sparklines): a
    fixed number of queries whatever its depth, by cursor or by number."""
    url = reverse("marketplace:index")
    with django_assert_max_num_queries(30) as first:
        r = client.get(url, {"availability": "all", **extra})
    limit = len(first.captured_queries)
    for _ in range(4):
        href = unescape(re.search(r'href="([^"]+)" rel="next"', r.content.decode())[1])
        with django_assert_max_num_queries(limit):
            r = client.get(url + href)
    with django_assert_max_num_queries(limit):
        assert _names(client.get(url, {"availability": "all", "page": 5, **extra}))


def _tampered(cursor: str) -> str:
    i = len(cursor) // 3
    return cursor[:i] + ("A" if cursor[i] != "A" else "B") + cursor[i + 1 :]


def _bad_cursors(filters):
    p, _, _ = catalogue.page(filters, 1)
    other, _, _ = catalogue.page({**filters, "sort": "-price"}, 1)
    return ["nonsense", "", "x" * 5000, _tampered(p.next_cursor), p.next_cursor[:-3], other.next_cursor]


def test_the_api_walks_by_the_next_link_and_refuses_a_bad_cursor(market):
    api = APIClient()
    filters = {"availability": "all", "sort": "vram"}
    everything = ordered(filters)
    url, seen, pages = f"/api/marketplace/nodes/?availability=all&sort=vram&page_size={PER_PAGE}", [], 0
    while url:
        r = api.get(url)
        assert r.status_code == 200
        body = r.json()
        assert body["count"] == len(everything)
        seen += [n["id"] for n in body["results"]]
        assert (body["previous"] is None) == (pages == 0)
        url, pages = body["next"], pages + 1
    assert seen == everything and pages == -(-len(everything) // PER_PAGE)
    # A numbered page still answers, and its next link carries a cursor.
    r = api.get("/api/marketplace/nodes/", {**filters, "page": 2, "page_size": PER_PAGE}).json()
    assert [n["id"] for n in r["results"]] == everything[PER_PAGE : 2 * PER_PAGE] and "cursor=" in r["next"]
    for page in ("999", "0", "two", "²"):
        assert api.get("/api/marketplace/nodes/", {**filters, "page": page}).status_code == 404
    for bad in _bad_cursors(filters):
        if not bad:
            continue  # an empty cursor is no cursor
        r = api.get("/api/marketplace/nodes/", {**filters, "cursor": bad})
        assert r.status_code == 400, bad
        assert "cursor" in r.json() and "not one this API gave out" in r.json()["cursor"][0]


@pytest.mark.parametrize("size", ["0", "101", "ten", "-1", "²", "1e2", "5" * 40])
def test_the_api_page_size_is_bounded(market, size):
    r = APIClient().get("/api/marketplace/nodes/", {"page_size": size})
    assert r.status_code == 400 and "page_size" in r.json()


def _names(response) -> list[str]:
    return re.findall(r'data-testid="offer-name">([^<]+)<', response.content.decode())


def test_the_page_follows_next_by_cursor_and_shows_the_first_page_for_a_bad_one(market, client):
    names = dict(GpuNode.objects.values_list("pk", "name"))
    everything = [names[pk] for pk in ordered({"sort": "health"})]
    url = reverse("marketplace:index")
    first = client.get(url, {"sort": "health"})
    assert _names(first) == everything[:PER_PAGE]
    next_href = unescape(re.search(r'href="([^"]+)" rel="next"', first.content.decode())[1])
    assert "cursor=" in next_href and "sort=health" in next_href and "page=" not in next_href
    second = client.get(url + next_href)
    assert _names(second) == everything[PER_PAGE : 2 * PER_PAGE]
    assert "Page 2 of" in second.content.decode()
    # A shared numbered link still opens that page.
    assert _names(client.get(url, {"sort": "health", "page": "3"})) == everything[2 * PER_PAGE : 3 * PER_PAGE]
    for bad in _bad_cursors({"sort": "health"}):
        r = client.get(url, {"sort": "health", "page": "3", "cursor": bad})
        assert r.status_code == 200
        want = everything[2 * PER_PAGE : 3 * PER_PAGE] if not bad else everything[:PER_PAGE]
        assert _names(r) == want, bad


@pytest.mark.parametrize("sort", ["price", "vram", "proximity"])
def test_the_api_reads_a_deep_page_with_no_more_queries_than_the_first(market, sort, django_assert_max_num_queries):
    api = APIClient()
    params = {"availability": "all", "sort": sort, "near": "eu-central", "page_size": PER_PAGE}
    with django_assert_max_num_queries(30) as first:
        body = api.get("/api/marketplace/nodes/", params).json()
    for _ in range(4):
        with django_assert_max_num_queries(len(first.captured_queries)):
            body = api.get(body["next"]).json()
    assert body["results"]

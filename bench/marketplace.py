#!/usr/bin/env python
"""Time the filtered catalogue page and a scheduler match over 100,000 nodes
on SQLite (or PostgreSQL), beside a minimal Django view on the same setup.

Builds its own data in a temporary SQLite database (never the project's), or
with ``--database-url`` in the PostgreSQL database it names (dropped and
created afresh):
nodes spread over every GPU model and region with random prices and health,
a few thousand active rentals, and six epochs of consensus per node for the
sparklines. Then it requests, through the real URL stack with Django's test
client (server time, no network):

* ``/marketplace/?gpu=h100-80gb&max_price=3&min_health=90&sort=price&page=3``
* ``/marketplace/`` (what a visitor sees first: every free node, cheapest first)
* both again with the cache cleared before each request: the page as the
  first visitor with those filters in ``catalogue.COUNT_SECONDS`` sees it,
  its count read afresh (the sweep below repeats each page, so its count is
  kept after the first)
* ``matching.match`` for 1x H100 near Frankfurt, balanced, 50 ms limit
* ``/healthz`` (the minimal view baseline)

and prints p50 / p95 in milliseconds. Then it sweeps every sort and
filter the catalogue offers: page 1, page 40 by its number (``?page=40``,
as a shared link opens it) and page 40 by the cursor page 39 handed out
(as a visitor clicking "Next" reaches it). ``--explain`` prints, after each
row, the slower node queries with their query plans.

    .venv/bin/python bench/marketplace.py [--nodes N] [--runs R] [--sweep-runs R] [--explain]
        [--database-url postgres://postgres@127.0.0.1:5432/aethir_marketplace]
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sandbox import random_nodes, temporary_sqlite  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--sweep-runs", type=int, default=40, help="runs per sort/filter in the sweep (0: none)")
    parser.add_argument(
        "--explain", action="store_true", help="after each sweep row, its slower node queries and their plans"
    )
    parser.add_argument("--database-url", help="PostgreSQL; its database is dropped and created afresh")
    args = parser.parse_args()
    if args.database_url:
        from bench.load import fresh_postgres

        os.environ["DATABASE_URL"] = fresh_postgres(args.database_url)
        os.environ.pop("REDIS_URL", None)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aethir_web.settings")
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        run(args.nodes, args.runs, args.sweep_runs, args.explain)
        return
    with temporary_sqlite("marketplace"):
        run(args.nodes, args.runs, args.sweep_runs, args.explain)


def pct(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * q))]


def timed(fn, runs):
    for _ in range(5):  # warm caches
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def run(n: int, runs: int, sweep_runs: int = 0, explain: bool = False):
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client
    from django.utils import timezone

    from apps.core import epochs, ledger
    from apps.core.models import GpuModel, GpuNode, Region
    from apps.core.parameters import ensure_defaults
    from apps.marketplace import matching
    from apps.marketplace.models import Rental
    from apps.monitoring.models import NodeEpoch

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    ensure_defaults()
    ledger.genesis()
    rng = random.Random(11)
    t0 = time.perf_counter()
    User = get_user_model()
    providers = User.objects.bulk_create([User(username=f"p{i}") for i in range(1_000)])
    now_epoch = epochs.current_number()
    with transaction.atomic():
        nodes = random_nodes(
            rng,
            n,
            providers,
            name="n{}",
            prices=(200_000, 6_000_000, 1_000),
            endpoint="http://127.0.0.1:1/health",
            status=lambda rng: rng.choice(("online",) * 8 + ("degraded", "pending")),
            health_score=lambda rng: rng.randrange(700_000, 1_000_001),
            required_collateral=0,
            collateral=0,
        )
        GpuNode.objects.bulk_create(nodes, batch_size=5_000)
        ids = list(GpuNode.objects.values_list("id", flat=True))
        renter = User.objects.create(username="renter")
        Rental.objects.bulk_create(
            [
                Rental(
                    renter=renter,
                    node_id=i,
                    gpu_count=1,
                    mode="reserved",
                    image="ubuntu",
                    start_epoch=now_epoch,
                    end_epoch=now_epoch + 100,
                    settled_through=now_epoch - 1,
                    price_per_gpu_hour=1,
                    epoch_seconds=60,
                    price_per_epoch=1,
                    escrow_total=100,
                )
                for i in rng.sample(ids, n // 30)
            ],
            batch_size=5_000,
        )
        NodeEpoch.objects.bulk_create(
            [
                NodeEpoch(
                    epoch=e,
                    node_id=i,
                    valid=True,
                    uptime_ppm=rng.choice((1_000_000, 995_000, 900_000)),
                    latency_ms=20,
                    health_score=950_000,
                )
                for e in range(now_epoch - 6, now_epoch)
                for i in ids
            ],
            batch_size=10_000,
        )
    with connection.cursor() as cur:
        # What autovacuum does to a table soon after a bulk load, so the
        # timings are of a network in its steady state: on PostgreSQL, VACUUM
        # also sets the visibility map, without which a count cannot be
        # answered from an index alone and reads the whole table instead.
        cur.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    print(
        f"built {n:,} nodes, {n // 30:,} rentals, {6 * n:,} node-epochs in {time.perf_counter() - t0:.1f} s "
        f"({connection.vendor})"
    )

    client = Client()
    url = "/marketplace/?gpu=h100-80gb&max_price=3&min_health=90&sort=price&page=3"
    assert client.get(url).status_code == 200 and client.get("/marketplace/").status_code == 200
    req = matching.Requirements(
        gpu_model=GpuModel.objects.get(slug="h100-80gb"),
        gpu_count=1,
        region=Region.objects.get(code="eu-central"),
        max_latency_ms=50,
        preference=matching.Preference.BALANCED,
    )
    found = matching.match(req)
    print(
        f"scheduler: {found['count']:,} candidates, best {found['candidates'][0].node.name if found['candidates'] else '-'}"
    )

    def uncounted(path):
        # The page as the first visitor in COUNT_SECONDS sees it: counted afresh.
        cache.clear()
        return client.get(path)

    rows = [
        ("catalogue page (filtered, page 3)", timed(lambda: client.get(url), runs)),
        ("catalogue page (no filters, page 1)", timed(lambda: client.get("/marketplace/"), runs)),
        ("  the same, its count not kept", timed(lambda: uncounted("/marketplace/"), runs)),
        ("  the filtered one, count not kept", timed(lambda: uncounted(url), runs)),
        ("scheduler match (top 5)", timed(lambda: matching.match(req), runs)),
        ("minimal Django view (/healthz)", timed(lambda: client.get("/healthz"), runs)),
    ]
    print(f"{'':38} {'p50 ms':>8} {'p95 ms':>8}   ({runs} runs, {timezone.now():%Y-%m-%d})")
    for name, samples in rows:
        print(f"{name:38} {statistics.median(samples):8.1f} {pct(samples, 0.95):8.1f}")
    if sweep_runs:
        sweep(client, sweep_runs, explain)


def deep_cursor(query: str, depth: int) -> str | None:
    """The cursor of page ``depth`` of ``query``, by walking the next
    cursors from page 1 (None if the list is shorter)."""
    from django.http import QueryDict

    from apps.marketplace import catalogue
    from apps.marketplace.forms import CatalogueForm

    filters = CatalogueForm(QueryDict(query)).values()
    p = catalogue.window(filters, 1)[0]
    for _ in range(depth - 2):
        if not p.next_cursor:
            return None
        p = catalogue.window(filters, None, p.next_cursor)[0]
    return p.next_cursor


def sweep(client, runs: int, explain: bool = False):
    """Every sort and filter: page 1, then page ``DEEP`` by its number (rows
    skipped) and by the cursor the page before it handed out (rows keyed)."""
    from urllib.parse import urlencode

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def cell(samples):
        return f"{statistics.median(samples):7.1f} {pct(samples, 0.95):7.1f}" if samples else f"{'-':>7} {'-':>7}"

    print(f"every sort and filter the catalogue offers ({runs} runs each; p50 / p95 ms):")
    print(f"  {'':46} {'page 1':>15} {f'page {DEEP} by number':>20} {'by cursor':>15}")
    worst = 0.0
    for query in SWEEP:
        cursor = deep_cursor(query, DEEP)
        urls = [f"/marketplace/?{query}", f"/marketplace/?{query}&page={DEEP}"]
        urls.append(f"/marketplace/?{query}&{urlencode({'cursor': cursor})}" if cursor else None)
        cells = []
        for url in urls:
            samples = timed(lambda u=url: client.get(u), runs) if url else []
            worst = max([worst, pct(samples, 0.95)] if samples else [worst])
            cells.append(cell(samples))
        print(f"  {query or '(defaults)':46} {cells[0]:>15} {cells[1]:>20} {cells[2]:>15}")
        if explain:
            for url in filter(None, urls):
                with CaptureQueriesContext(connection) as ctx:
                    client.get(url)
                print(f"    {url[:100]}: {len(ctx)} queries")
                for q in ctx.captured_queries:
                    if "core_gpunode" not in q["sql"] or float(q["time"]) < 0.002:
                        continue
                    print(f"      {float(q['time']) * 1000:6.1f} ms  {q['sql'][:160]}")
                    with connection.cursor() as cur:
                        explain_as = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
                        cur.execute(explain_as + q["sql"])
                        for row in cur.fetchall():
                            print(f"                {row[-1]}")
    print(f"  slowest p95 of the sweep: {worst:.1f} ms")


DEEP = 40
SORTS = ("price", "-price", "health", "vram", "proximity&near=eu-central")
SWEEP = (
    [f"sort={s}" for s in SORTS]
    + [f"availability=all&sort={s}" for s in SORTS]
    + [
        "gpu=h100-80gb",
        "min_vram=40",
        "count=4",
        "region=eu-west",
        "max_price=2",
        "min_health=95",
        "gpu=h100-80gb&sort=health",
        "gpu=rtx-4090&sort=-price&availability=all",
        "min_vram=40&region=eu-west&sort=health",
        "count=8&availability=all&sort=-price",
        "max_price=1&min_health=90&sort=vram",
    ]
)


if __name__ == "__main__":
    main()

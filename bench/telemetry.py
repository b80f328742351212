#!/usr/bin/env python
"""Telemetry storage on PostgreSQL: size per 1,000 nodes per day, the live
pages' queries, and the cost of pruning an epoch.

Builds its own data in the PostgreSQL database named by ``--database-url``
(dropped and created afresh): ``--nodes`` GPU nodes and ``--hours`` of their
heartbeats at the provider agent's rate (one sample every 5 s), written with
COPY. Prints the heartbeat table's size (heap and each index) scaled to
1,000 nodes and a day, the time and plan of the overview's live window and
of a node page's recent samples, and the time retention takes to prune one
epoch's samples (its consensus marked computed), beside a bare
``DELETE ... WHERE epoch = e`` of the next epoch as the baseline.

    .venv/bin/python bench/telemetry.py --database-url postgres://postgres@127.0.0.1:5432/aethir_telemetry
        [--nodes 1000] [--hours 1]
"""

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import fresh_postgres  # noqa: E402

EVERY = 5  # seconds between an agent's samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = fresh_postgres(args.database_url)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aethir_web.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DEMO_MODE"] = "0"  # production epochs (an hour), not the demo's minute
    os.environ.setdefault("SECRET_KEY", "telemetry-bench-" + "k" * 40)
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from apps.core import epochs
    from apps.core.models import GpuNode
    from apps.monitoring import queries, retention
    from apps.monitoring.models import EpochConsensus, Heartbeat
    from bench.ingest import build

    t = time.perf_counter()
    build(args.nodes)
    ids = list(GpuNode.objects.order_by("id").values_list("id", flat=True))
    now = timezone.now()
    per_epoch = int(epochs.length().total_seconds())
    samples = int(args.hours * 3600 / EVERY)
    meta = Heartbeat._meta
    columns = [
        meta.get_field(f).column
        for f in (
            "node",
            "at",
            "epoch",
            "gpu_util",
            "mem_used_mb",
            "mem_total_mb",
            "temperature_c",
            "power_w",
            "workloads",
        )
    ]
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy:
            for k in range(samples):
                at = now - timedelta(seconds=EVERY * (samples - k))
                # Whole epochs from the first sample on (the network's own
                # genesis is this run's start, after every sample).
                epoch = EVERY * k // per_epoch
                for i, node in enumerate(ids):
                    copy.write_row((node, at, epoch, (i + k) % 101, 40_000, 81_920, 60 + i % 20, 500, 1))
        cursor.execute(f"VACUUM ANALYZE {meta.db_table}")
    rows = samples * len(ids)
    print(f"built {len(ids):,} nodes and {rows:,} heartbeats ({args.hours:g} h) in {time.perf_counter() - t:.1f} s")

    scale = 1_000 / len(ids) * 24 / args.hours
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_relation_size(%s), pg_indexes_size(%s), pg_total_relation_size(%s)",
            [meta.db_table] * 3,
        )
        heap, indexes, total = cursor.fetchone()
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
            "WHERE indrelid = %s::regclass ORDER BY 1",
            [meta.db_table],
        )
        per_index = cursor.fetchall()
    mib = 1024 * 1024
    print(
        f"heartbeat table per 1,000 nodes per day ({86_400 // EVERY:,} samples a node): "
        f"{total * scale / mib:,.0f} MiB (rows {heap * scale / mib:,.0f} MiB, indexes {indexes * scale / mib:,.0f} MiB; "
        f"{total / rows:.0f} bytes a sample)"
    )
    for name, nbytes in per_index:
        print(f"  index {name:40s} {nbytes * scale / mib:8,.0f} MiB")

    def timed(label, fn, runs=20):
        fn()
        out = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1000)
        out.sort()
        print(f"  {label:52s} p50 {out[len(out) // 2]:7.1f} ms  p95 {out[int(len(out) * 0.95)]:7.1f} ms")

    node = GpuNode.objects.get(pk=ids[len(ids) // 2])
    print("live pages' telemetry reads:")
    timed("overview (the last minutes, every node)", queries.overview)
    timed("a node page's charts (its last 10 minutes)", lambda: queries.node_series(node))
    with connection.cursor() as cursor:
        sql, params = (
            Heartbeat.objects.filter(at__gte=now - queries.LIVE_WINDOW).values("gpu_util").query.sql_with_params()
        )
        cursor.execute("EXPLAIN " + sql, params)
        print("  plan of the overview's window:", cursor.fetchall()[0][0])

    held = sorted(set(Heartbeat.objects.values_list("epoch", flat=True)))
    if len(held) >= 3:
        first, second = held[0], held[1]
        EpochConsensus.objects.create(epoch=first)
        n = Heartbeat.objects.filter(epoch=first).count()
        t0 = time.perf_counter()
        removed = retention._prune_heartbeats(first + 1)
        took = time.perf_counter() - t0
        print(f"retention: pruned epoch {first} ({removed:,} of {n:,} samples) in {took * 1000:,.0f} ms")
        n = Heartbeat.objects.filter(epoch=second).count()
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {meta.db_table} WHERE epoch = %s", [second])
        took = time.perf_counter() - t0
        print(f"baseline: one bare DELETE of epoch {second} ({n:,} samples) in {took * 1000:,.0f} ms")
    else:
        print("retention: fewer than three epochs of samples; use more --hours")


if __name__ == "__main__":
    main()

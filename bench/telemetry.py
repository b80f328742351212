#!/usr/bin/env python
"""Telemetry storage on PostgreSQL: size per 1,000 nodes per day, the live
pages' queries, and the cost of pruning: a partition dropped beside the
same number of samples deleted.

Builds its own data in the PostgreSQL database named by ``--database-url``
(dropped and created afresh): ``--nodes`` GPU nodes and ``--hours`` of their
heartbeats at the provider agent's rate (one sample every 5 s), written with
COPY into the table's partitions of ``--span`` epochs each
(``HEARTBEAT_PARTITION_EPOCHS``; created first, as the scheduler does).
Prints the heartbeat table's size (heap and each index, over all its
partitions) scaled to 1,000 nodes and a day, the time and plan of the
overview's live window and of a node page's recent samples; then
retention's prune of the first span (its epochs' consensus marked
computed: the partition detached and dropped) beside the old way for the
second span, one ``DELETE ... WHERE epoch = e`` per epoch, the same number
of samples, and the VACUUM those deleted rows leave to do.

    .venv/bin/python bench/telemetry.py --database-url postgres://postgres@127.0.0.1:5432/aethir_telemetry
        [--nodes 1000] [--hours 2] [--span 1]
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
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--span", type=int, default=1, help="epochs a partition (HEARTBEAT_PARTITION_EPOCHS)")
    args = parser.parse_args()
    os.environ["HEARTBEAT_PARTITION_EPOCHS"] = str(args.span)
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
    from apps.monitoring import partitions, queries, retention
    from apps.monitoring.models import EpochConsensus, Heartbeat
    from bench.ingest import build

    t = time.perf_counter()
    build(args.nodes)
    ids = list(GpuNode.objects.order_by("id").values_list("id", flat=True))
    now = timezone.now()
    per_epoch = int(epochs.length().total_seconds())
    samples = int(args.hours * 3600 / EVERY)
    last_epoch = EVERY * (samples - 1) // per_epoch
    partitions.ensure(0, ahead=last_epoch // args.span)
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
        # Over the table's partitions (a partitioned table holds nothing itself).
        # (A plain table, migrated back, counts as its own one leaf.)
        leaves = "SELECT relid FROM pg_partition_tree({0}) WHERE isleaf UNION SELECT {0} WHERE NOT EXISTS "
        leaves += "(SELECT 1 FROM pg_partition_tree({0}) WHERE isleaf)"
        cursor.execute(
            "SELECT sum(pg_relation_size(relid))::bigint, sum(pg_indexes_size(relid))::bigint, "
            f"sum(pg_total_relation_size(relid))::bigint FROM ({leaves.format('%s::regclass')}) AS t(relid)",
            [meta.db_table] * 3,
        )
        heap, indexes, total = cursor.fetchone()
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, (SELECT sum(pg_relation_size(relid))::bigint "
            f"FROM ({leaves.format('i.indexrelid')}) AS t(relid)) "
            "FROM pg_index i WHERE i.indrelid = %s::regclass ORDER BY 1",
            [meta.db_table],
        )
        per_index = cursor.fetchall()
    print(f"partitions of {args.span} epoch(s): {len(partitions.partitions())} and the default")
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
        plan = [row[0] for row in cursor.fetchall()]
        print("  plan of the overview's window:", plan[0], f"({sum('Index' in line for line in plan)} index scans)")

    spans = [(lo, hi) for _, lo, hi in partitions.partitions() if hi <= last_epoch]
    if len(spans) < 2:
        print(f"retention: fewer than two whole spans of {args.span} epoch(s) before the last epoch; use more --hours")
        return
    (lo, hi), (lo2, hi2) = spans[:2]
    EpochConsensus.objects.bulk_create(EpochConsensus(epoch=e) for e in range(lo, hi))
    n = Heartbeat.objects.filter(epoch__gte=lo, epoch__lt=hi).count()
    drop, in_drop = partitions.drop, []

    def timed_drop(*a, **kw):
        t0 = time.perf_counter()
        try:
            return drop(*a, **kw)
        finally:
            in_drop.append(time.perf_counter() - t0)

    partitions.drop = timed_drop
    t0 = time.perf_counter()
    removed, dropped = retention._prune_heartbeats(hi)
    took = time.perf_counter() - t0
    partitions.drop = drop
    assert (removed, dropped) == (0, 1) and not Heartbeat.objects.filter(epoch__lt=hi).exists()
    print(
        f"retention: dropped the partition of epochs {lo} to {hi - 1} ({n:,} samples) in {took * 1000:,.1f} ms, "
        f"the whole prune (of which detach and drop {sum(in_drop) * 1000:,.1f} ms; the rest its look-ups)"
    )
    n = Heartbeat.objects.filter(epoch__gte=lo2, epoch__lt=hi2).count()
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        for e in range(lo2, hi2):
            cursor.execute(f"DELETE FROM {meta.db_table} WHERE epoch = %s", [e])
    took = time.perf_counter() - t0
    print(
        f"baseline: the same as before partitions, one DELETE per epoch of epochs {lo2} to {hi2 - 1} "
        f"({n:,} samples) in {took * 1000:,.0f} ms"
    )
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {partitions.name(lo2, hi2)}")
    print(f"  and the VACUUM its dead rows leave to do: {(time.perf_counter() - t0) * 1000:,.0f} ms")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Checker assignment at scale: the rules side by side, then a real round.

1. The rules alone, in memory, on the same random ids: the legacy
   rendezvous rule (every checker scored for every node) on a smaller
   network, extrapolated per node; a classic hash ring with V hashed
   points per checker (R distinct checkers walking clockwise) for a few V;
   and the ranked ring the project uses. For each: time and every checker's
   load against the mean (min, max, and the share of checkers outside
   ±20%).
2. The round as the scheduler fixes it (``assignment.fix_round``: read the
   participants, draw, insert the rows) and its published verification
   (``assignment.verify``), in a database of its own filled with the nodes
   and checkers: a temporary SQLite file, or the PostgreSQL database named by
   ``--database-url`` (dropped and created afresh).

    .venv/bin/python bench/assignment.py [--nodes 100000] [--checkers 10000]
        [--legacy-nodes 1000] [--points 10,100] [--database-url postgres://...]
"""

import argparse
import bisect
import hashlib
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import fresh_postgres  # noqa: E402
from bench.sandbox import temporary_sqlite  # noqa: E402

R = 3


def point(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def hashed_ring(epoch: int, node_ids, checker_ids, replication: int, v: int) -> dict[int, list[int]]:
    """A classic consistent-hash ring: V hashed points per checker, each node
    at its own hashed point takes the first R distinct checkers clockwise."""
    points = sorted((point(f"{epoch}:{c}:{i}"), c) for c in checker_ids for i in range(v))
    where = [p for p, _ in points]
    owner = [c for _, c in points]
    size, r = len(points), min(replication, len(checker_ids))
    out = {}
    for n in node_ids:
        i = bisect.bisect_right(where, point(f"{epoch}:node:{n}"))
        chosen: list[int] = []
        while len(chosen) < r:
            c = owner[i % size]
            if c not in chosen:
                chosen.append(c)
            i += 1
        out[n] = chosen
    return out


def balance(assigned: dict[int, list[int]], checker_ids) -> str:
    from apps.monitoring import assignment

    count = assignment.loads(assigned)
    loads = [count.get(c, 0) for c in checker_ids]
    mean = sum(loads) / len(loads)
    outside = sum(1 for x in loads if abs(x - mean) > 0.2 * mean) / len(loads)
    return (
        f"load min {min(loads) / mean:5.2f}x max {max(loads) / mean:5.2f}x the mean ({mean:.1f}), "
        f"{outside:6.1%} of checkers outside ±20%"
    )


def rules(args, rng) -> None:
    import django

    django.setup()
    from apps.monitoring import assignment

    nodes = rng.sample(range(1, 10 * args.nodes), args.nodes)
    checkers = rng.sample(range(1, 10 * args.checkers), args.checkers)
    print(f"rules in memory, {args.nodes:,} nodes x {args.checkers:,} checkers, R={R}:")

    few = nodes[: args.legacy_nodes]
    t = time.perf_counter()
    for n in few:
        assignment.choose(7, n, checkers, R)
    per_node = (time.perf_counter() - t) / len(few)
    print(
        f"  {'rendezvous (legacy)':28s} {per_node * 1000:7.2f} ms/node on {len(few):,} nodes "
        f"-> {per_node * args.nodes:8.1f} s for {args.nodes:,} (extrapolated)"
    )
    for v in args.points:
        t = time.perf_counter()
        got = hashed_ring(7, nodes, checkers, R, v)
        print(f"  {f'hashed ring, V={v}':28s} {time.perf_counter() - t:8.2f} s   {balance(got, checkers)}")
    t = time.perf_counter()
    got = assignment.ring(7, nodes, checkers, R)
    print(f"  {'ranked ring (the rule)':28s} {time.perf_counter() - t:8.2f} s   {balance(got, checkers)}")


def round_in_database(args, rng) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from apps.core import ledger
    from apps.core.models import CheckerNode, GpuNode
    from apps.core.parameters import ensure_defaults
    from apps.monitoring import assignment
    from bench.sandbox import random_nodes

    t = time.perf_counter()
    call_command("migrate", verbosity=0)
    ensure_defaults()
    ledger.genesis()
    User = get_user_model()
    providers = User.objects.bulk_create([User(username=f"provider-{i}", password="!") for i in range(100)])
    GpuNode.objects.bulk_create(
        random_nodes(
            rng,
            args.nodes,
            providers,
            name="node-{}",
            prices=(200_000, 4_000_000, 1_000),
            endpoint="http://127.0.0.1:1/health",
            status="online",
        ),
        batch_size=5_000,
    )
    operators = User.objects.bulk_create(
        [User(username=f"operator-{i}", password="!") for i in range(args.checkers)], batch_size=5_000
    )
    CheckerNode.objects.bulk_create(
        [CheckerNode(operator=op, name=f"checker-{i}", status="active") for i, op in enumerate(operators)],
        batch_size=5_000,
    )
    print(
        f"{connection.vendor}: built {args.nodes:,} nodes and {args.checkers:,} checkers in {time.perf_counter() - t:.1f} s"
    )
    t = time.perf_counter()
    rows = assignment.fix_round(1)
    fixed = time.perf_counter() - t
    t = time.perf_counter()
    result = assignment.verify(1)
    checked = time.perf_counter() - t
    print(f"  fix_round (read participants, draw, insert {rows:,} rows)  {fixed:6.2f} s")
    print(f"  verify (recompute from the published lists, compare rows) {checked:6.2f} s  ok={result['ok']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--checkers", type=int, default=10_000)
    parser.add_argument("--legacy-nodes", type=int, default=1_000, help="nodes the legacy rule is timed on")
    parser.add_argument("--points", default="10,100", help="V values for the hashed ring, comma-separated")
    parser.add_argument("--database-url", help="a PostgreSQL URL whose database is dropped and created afresh")
    parser.add_argument("--skip-database", action="store_true")
    args = parser.parse_args()
    args.points = [int(v) for v in args.points.split(",") if v.strip()]
    rng = random.Random(16)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aethir_web.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if args.database_url:
        os.environ["DATABASE_URL"] = fresh_postgres(args.database_url, "aethir_assignment")
        os.environ.pop("REDIS_URL", None)
        rules(args, rng)
        if not args.skip_database:
            round_in_database(args, rng)
        return
    with temporary_sqlite("assignment"):
        rules(args, rng)
        if not args.skip_database:
            round_in_database(args, rng)


if __name__ == "__main__":
    main()

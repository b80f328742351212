#!/usr/bin/env python
"""Settle one epoch of a large network on SQLite or PostgreSQL and print the
time and the peak memory of the settlement, beside the bare SQL aggregation
of the same checker reports (the ratio shows the cost of everything else).

Builds its own data in a temporary SQLite database (never the project's),
or with ``--database-url`` in the PostgreSQL database it names, dropped and
created afresh (and dropped again at the end unless ``--keep``; the bulk
rows go in with ``COPY`` there). By default: 100,000 online GPU nodes
(1,000 providers, collateral posted), 10,000 active checkers, 1,000,000
delegations (100 per checker), 300,000 checker reports (three per node, a
few nodes slow, down or outvoted) and 5,000 active rentals. Balances are
written in bulk rather than posted one by one, so this database's hash
chain is not meant to verify; the faucet is debited by what the bulk rows
hold, so the supply still adds up, and the script checks that settlement
conserved it.

The settlement runs as the real command, ``manage.py settle_epoch --epoch
1``, in a child process, so its wall time and peak memory (max RSS) are its
own, Django's start-up included.

    .venv/bin/python bench/settle.py [--nodes 100000] [--checkers 10000]
        [--delegations 1000000] [--rentals 5000] [--keep]
        [--database-url postgres://postgres@127.0.0.1:5432/aethir_settle]
"""

import argparse
import os
import random
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import fresh_postgres  # noqa: E402
from bench.sandbox import insert_delegations, insert_objects, random_nodes, temporary_sqlite  # noqa: E402

EPOCH = 1  # the epoch settled; stake is bonded in epoch 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--checkers", type=int, default=10_000)
    parser.add_argument("--delegations", type=int, default=1_000_000)
    parser.add_argument("--rentals", type=int, default=5_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary database")
    parser.add_argument("--profile", metavar="FILE", help="run the settlement under cProfile, stats to FILE")
    parser.add_argument(
        "--database-url", default="", help="a PostgreSQL URL; the database is dropped and created, then dropped"
    )
    args = parser.parse_args()
    database = (
        temporary_postgres(args.database_url, args.keep)
        if args.database_url
        else temporary_sqlite("settle", keep=args.keep)
    )
    with database:
        build(args)
        measure(args.profile)


@contextmanager
def temporary_postgres(url: str, keep: bool):
    """Point Django at the PostgreSQL database named in ``url`` (by default
    ``aethir_settle``), dropped and created afresh; drop it afterwards
    unless ``keep``."""
    parts = urlsplit(url)
    if not parts.path.strip("/"):
        parts = parts._replace(path="/aethir_settle")
    os.environ["DATABASE_URL"] = fresh_postgres(urlunsplit(parts))
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aethir_web.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    try:
        yield
    finally:
        name = parts.path.strip("/")
        if keep:
            print(f"database {name} kept")
        else:
            import psycopg
            from django.db import connections

            connections.close_all()
            admin = urlunsplit(parts._replace(path="/postgres"))
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def build(args):
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.core import epochs, ledger
    from apps.core.amounts import ath
    from apps.core.models import Account, ChainHead, CheckerNode, GpuNode, ModuleAccount
    from apps.core.parameters import ensure_defaults
    from apps.marketplace.models import Rental
    from apps.monitoring.models import Assignment, AssignmentRound, CheckerReport
    from apps.staking.models import StakingState

    rng = random.Random(2026)
    t_start = time.perf_counter()
    call_command("migrate", verbosity=0)
    ensure_defaults()
    ledger.genesis()
    User = get_user_model()
    now = timezone.now()
    stamp = now.isoformat(sep=" ")
    n_nodes, n_checkers, n_delegations, n_rentals = args.nodes, args.checkers, args.delegations, args.rentals
    total_bulk = 0  # what the bulk rows hold, taken from the faucet below

    with transaction.atomic():
        # People and their wallets.
        providers = User.objects.bulk_create([User(username=f"provider-{i}", password="!") for i in range(1_000)])
        operators = User.objects.bulk_create([User(username=f"operator-{i}", password="!") for i in range(n_checkers)])
        renters = User.objects.bulk_create([User(username=f"renter-{i}", password="!") for i in range(500)])
        Account.objects.bulk_create(
            [Account(owner=u, address=f"ath1u{u.pk:038d}") for u in providers + operators + renters], batch_size=5_000
        )
        wallet = dict(Account.objects.filter(owner__isnull=False).values_list("owner_id", "pk"))

        # GPU nodes, online, with their collateral posted.
        collateral = ath(1_000)
        insert_objects(
            GpuNode,
            random_nodes(
                rng,
                n_nodes,
                providers,
                name="node-{}",
                prices=(200_000, 4_000_000, 1_000),
                endpoint="http://127.0.0.1:1/health",
                status="online",
                health_score=990_000,
                required_collateral=collateral,
                collateral=collateral,
            ),
            batch_size=5_000,
        )
        nodes = list(GpuNode.objects.values_list("pk", "provider_id", "price_per_gpu_hour", "gpu_count"))
        per_provider: dict[int, int] = {}
        for _, provider_id, _, _ in nodes:
            per_provider[provider_id] = per_provider.get(provider_id, 0) + collateral
        for provider_id, amount in per_provider.items():
            Account.objects.filter(pk=wallet[provider_id]).update(collateral=amount)
        total_bulk += collateral * len(nodes)

        # Checkers: self-stake bonded in epoch 0, then 100 delegations each.
        self_stake, lot = ath(10_000), ath(3)
        per_checker = n_delegations // n_checkers
        CheckerNode.objects.bulk_create(
            [
                CheckerNode(
                    operator=op,
                    name=f"checker-{i}",
                    status="active",
                    commission_rate=rng.choice((20_000, 50_000, 100_000)),
                    commission_max_rate=200_000,
                    self_stake=self_stake,
                    total_stake=self_stake + per_checker * lot,
                )
                for i, op in enumerate(operators)
            ],
            batch_size=5_000,
        )
        checkers = list(CheckerNode.objects.order_by("pk").values_list("pk", "operator_id"))
        StakingState.objects.bulk_create([StakingState(checker_id=c) for c, _ in checkers], batch_size=5_000)
        with connection.cursor() as cur:
            cur.executemany(
                "UPDATE core_account SET bonded = %s WHERE id = %s", [(self_stake, wallet[op]) for _, op in checkers]
            )
            cur.executemany(
                "INSERT INTO staking_delegation (delegator_id, checker_id, amount, start_epoch, accrued_scaled,"
                " created_at, updated_at) VALUES (%s, %s, %s, 0, '0', %s, %s)",
                [(wallet[op], c, self_stake, stamp, stamp) for c, op in checkers],
            )
            total_bulk += self_stake * len(checkers)
            insert_delegations(cur, [c for c, _ in checkers], n_delegations, lot, stamp)
            total_bulk += lot * n_delegations

        # Epoch 1's assignments (three checkers per node, spread evenly; the
        # rule that picks them is not what this measures) and reports: most
        # nodes healthy, some slow (an SLA breach), some down, and now and
        # then a checker far from the other two (judged incorrect).
        replication = 3
        checker_ids = [c for c, _ in checkers]
        node_ids = [pk for pk, _, _, _ in nodes]
        AssignmentRound.objects.create(epoch=EPOCH, replication=replication, checker_ids=checker_ids, node_ids=node_ids)
        pairs = [
            (n, checker_ids[(k * 7919 + j * 104_729) % len(checker_ids)])
            for k, n in enumerate(node_ids)
            for j in range(replication)
        ]
        insert_objects(Assignment, [Assignment(epoch=EPOCH, node_id=n, checker_id=c) for n, c in pairs], 10_000)
        gpu_of = dict(GpuNode.objects.values_list("pk", "gpu_model__name"))
        count_of = {pk: count for pk, _, _, count in nodes}
        kind = {n: rng.choices(("ok", "slow", "down"), weights=(95, 3, 2))[0] for n in node_ids}
        reports = []
        for n, c in pairs:
            up, latency = {"ok": (1_000_000, 40), "slow": (1_000_000, 400), "down": (0, None)}[kind[n]]
            if rng.random() < 0.002:
                up, latency = rng.randrange(0, 1_000_000), rng.randrange(1, 2_000)  # an outlier
            reports.append(
                CheckerReport(
                    epoch=EPOCH,
                    node_id=n,
                    checker_id=c,
                    probes=12,
                    uptime_ppm=up,
                    task_ppm=up,
                    latency_ms=latency,
                    spec_ok=None if latency is None else True,
                    gpu_name_seen=gpu_of[n] if latency else "",
                    gpu_count_seen=count_of[n] if latency else 0,
                    payload_hash="bench",
                    signature="bench",
                )
            )
        insert_objects(CheckerReport, reports, 10_000)

        # Active rentals, their escrow held by the renters.
        rented = rng.sample(nodes, n_rentals)
        seconds = epochs.length().total_seconds()
        rentals, escrow_of = [], {}
        for i, (pk, _, price, count) in enumerate(rented):
            per_epoch = price * count * int(seconds) // 3600
            renter = renters[i % len(renters)]
            rentals.append(
                Rental(
                    renter=renter,
                    node_id=pk,
                    gpu_count=count,
                    mode="reserved",
                    image="ubuntu",
                    start_epoch=EPOCH,
                    end_epoch=EPOCH + 10,
                    settled_through=EPOCH - 1,
                    price_per_gpu_hour=price,
                    epoch_seconds=int(seconds),
                    price_per_epoch=per_epoch,
                    escrow_total=10 * per_epoch,
                )
            )
            escrow_of[wallet[renter.pk]] = escrow_of.get(wallet[renter.pk], 0) + 10 * per_epoch
        Rental.objects.bulk_create(rentals, batch_size=5_000)
        for account_id, amount in escrow_of.items():
            Account.objects.filter(pk=account_id).update(escrowed=amount)
        total_bulk += sum(escrow_of.values())

        # What the bulk rows hold comes out of the faucet: the supply adds up.
        faucet = ledger.module_account(ModuleAccount.FAUCET)
        Account.objects.filter(pk=faucet.pk).update(available=faucet.available - total_bulk)
        # Epoch 1 is over: settle it now.
        length = epochs.length()
        ChainHead.objects.filter(pk=1).update(genesis_at=now - length * (EPOCH + 1) - timedelta(seconds=1))
    with connection.cursor() as cur:
        # On PostgreSQL as autovacuum would leave bulk-loaded tables: the
        # settlement should not pay for setting the fresh rows' hint bits.
        cur.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    print(
        f"built {n_nodes:,} nodes, {n_checkers:,} checkers, {n_delegations:,} delegations, "
        f"{len(reports):,} reports, {n_rentals:,} rentals in {time.perf_counter() - t_start:.0f} s"
    )


def supply_held() -> tuple[int, int]:
    from django.db import connection

    from apps.core.models import ChainHead

    with connection.cursor() as cur:
        cur.execute("SELECT SUM(available + escrowed + collateral + bonded + unbonding) FROM core_account")
        held = int(cur.fetchone()[0])
    return held, ChainHead.objects.get(pk=1).supply


def measure(profile: str | None = None):
    from django.db import connection

    from apps.core.amounts import format_uath
    from apps.settlement.models import EpochSettlement, SettlementLine

    # The bare aggregation: what a settlement must at least read.
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT node_id, COUNT(*), MIN(uptime_ppm), MAX(uptime_ppm), MIN(latency_ms), MAX(latency_ms),"
            " SUM(CASE WHEN spec_ok THEN 1 ELSE 0 END) FROM monitoring_checkerreport WHERE epoch = %s GROUP BY node_id",
            [EPOCH],
        )
        groups = len(cur.fetchall())
    bare = time.perf_counter() - t0
    held_before, supply = supply_held()
    assert held_before == supply, (held_before, supply)
    connection.close()

    vendor = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(connection.vendor, connection.vendor)
    load = os.getloadavg()  # the machine's business at the start, beside the figures
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    python = [sys.executable, "-m", "cProfile", "-o", profile] if profile else [sys.executable]
    done = subprocess.run(
        [*python, str(ROOT / "manage.py"), "settle_epoch", "--epoch", str(EPOCH)],
        env=os.environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        sys.exit(f"settle_epoch failed:\n{done.stdout}\n{done.stderr}")
    if peak_kib <= before:
        peak_kib = before  # the child was not the largest child so far (it is the only one)

    report = EpochSettlement.objects.get(epoch=EPOCH)
    held_after, _ = supply_held()
    print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "")
    print(
        f"settled epoch {EPOCH}: {report.nodes_valid:,} nodes with consensus, {report.nodes_paid:,} nodes and "
        f"{report.checkers_paid:,} checkers paid, {report.breaches:,} SLA breaches, {report.jailed} jailed, "
        f"rental fees {format_uath(report.rental_fees)}, {SettlementLine.objects.filter(epoch=EPOCH).count():,} lines"
    )
    print(f"supply conserved: {'yes' if held_after == supply else 'NO'} ({format_uath(held_after)})")
    print(f"bare SQL aggregation of the reports ({groups:,} nodes): {bare:8.2f} s")
    print(f"settle_epoch (child process, start-up included):  {wall:8.2f} s   peak memory {peak_kib / 1024:,.0f} MiB")
    print(f"on {vendor}; load average at the start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"RATIO settle / bare aggregation: {wall / bare:.0f}x   (aim: under 60 s and under 2 GiB)")
    if held_after != supply:
        sys.exit("the supply changed")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Settle an epoch of checker rewards with 1,000 and with 1,000,000
delegations on SQLite and print both times (the ratio should be close to 1).

Builds its own data in a temporary SQLite database (never the project's):
two checkers activated through the real service, then N delegator wallets
and N delegations (one lot each, bonded in epoch 0) inserted in bulk for
each; those rows stand in for N delegation postings, so this database's
ledger is not meant to verify. Then it times, through the real services:

* ``distribute()`` for epoch 1 on each checker (median of 5 epochs),
* one delegator's ``pending_rewards()`` and ``claim_rewards()`` on the
  large checker,

and checks the reward against the exact share computed here.

    .venv/bin/python bench/staking.py [--small 1000] [--large 1000000]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sandbox import insert_delegations, temporary_sqlite  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary database")
    args = parser.parse_args()
    with temporary_sqlite("staking", keep=args.keep):
        run(args.small, args.large)


def run(small: int, large: int):
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.accounts.services import open_wallet
    from apps.core import ledger
    from apps.core.amounts import ath, format_uath
    from apps.core.models import Account, CheckerNode, ModuleAccount, TxKind
    from apps.core.parameters import ensure_defaults
    from apps.staking import queries, services

    call_command("migrate", verbosity=0)
    ensure_defaults()
    ledger.genesis()
    reserve = ledger.module_account(ModuleAccount.EMISSION_RESERVE)
    User = get_user_model()
    checkers = {}
    for label in ("small", "large"):
        op = User.objects.create(username=f"bench-operator-{label}", password="!")
        ledger.transfer(ledger.module_account(ModuleAccount.FAUCET), open_wallet(op), ath(10_000), kind=TxKind.FAUCET)
        checkers[label] = services.activate_checker(op, f"bench-{label}", ath(10_000), commission_rate=50_000, epoch=0)

    stake = ath(3)
    now = timezone.now().isoformat(sep=" ")
    t0 = time.perf_counter()
    for label, n in (("small", small), ("large", large)):
        checker = checkers[label]
        with transaction.atomic(), connection.cursor() as cur:
            insert_delegations(cur, [checker.pk], n, stake, now, tag=label[0])
            CheckerNode.objects.filter(pk=checker.pk).update(total_stake=ath(10_000) + n * stake)
    connection.cursor().execute("ANALYZE")
    print(f"built {small:,} + {large:,} delegations in {time.perf_counter() - t0:.1f} s")

    reward = ath(20_000)
    times = {}
    for label in ("small", "large"):
        checker = CheckerNode.objects.get(pk=checkers[label].pk)
        runs = []
        for epoch in range(1, 6):
            t0 = time.perf_counter()
            services.distribute(checker, reward, epoch, reserve)
            runs.append(time.perf_counter() - t0)
        times[label] = statistics.median(runs)

    # One delegator of the large checker: its reward is its exact share, rounded down.
    checker = CheckerNode.objects.get(pk=checkers["large"].pk)
    lot = checker.delegations.exclude(delegator__owner__isnull=False).order_by("id").first()
    share = reward - reward * 50_000 // 1_000_000
    expected = 5 * share * stake // checker.total_stake
    t0 = time.perf_counter()
    pending = queries.pending_rewards(lot.delegator, checker)
    pending_s = time.perf_counter() - t0
    assert expected - 1 <= pending <= expected, (pending, expected)
    person = User.objects.create(username="bench-claimer", password="!")
    # Hand the bulk-made wallet to a person (dropping the empty one sign-up made) so they can claim.
    Account.objects.filter(owner=person).delete()
    lot.delegator.owner = person
    lot.delegator.save(update_fields=["owner"])
    t0 = time.perf_counter()
    paid = services.claim_rewards(person, checker, epoch=6)
    claim_s = time.perf_counter() - t0
    assert paid == pending

    print(
        f"reward per epoch {format_uath(reward)}; one delegator of {large:,} earned {format_uath(pending)} in 5 epochs"
    )
    print(f"distribute(), {small:>9,} delegations: {times['small'] * 1000:8.2f} ms (median of 5 epochs)")
    print(f"distribute(), {large:>9,} delegations: {times['large'] * 1000:8.2f} ms (median of 5 epochs)")
    print(f"pending_rewards() for one of {large:,}:   {pending_s * 1000:8.2f} ms")
    print(f"claim_rewards() for one of {large:,}:     {claim_s * 1000:8.2f} ms")
    print(f"RATIO large/small: {times['large'] / times['small']:.2f}")


if __name__ == "__main__":
    main()

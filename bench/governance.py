#!/usr/bin/env python
"""Tally a proposal with 1,000,000 voters on SQLite and print the times.

Builds its own data in a temporary SQLite database (never the project's):
1,000,000 holder wallets with balance checkpoints (some moved before the
snapshot, some after it with large sums that must not count), one proposal
created through the real service, and 1,000,000 votes carrying each voter's
snapshot power. Then it times, through the real service functions:

* the snapshot's total voting power (the aggregate over the latest
  checkpoint per account at or below the height),
* the live tally (one aggregate over the votes),
* ``tally_due()`` finalising the proposal (tally, deposit refund, execution),

and checks every figure against the sums computed while generating the data.

    .venv/bin/python bench/governance.py [--voters N]
"""

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sandbox import temporary_sqlite  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voters", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary database")
    args = parser.parse_args()
    n = args.voters

    with temporary_sqlite("governance", keep=args.keep):
        run(n)


def run(n: int):
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.core import epochs, ledger
    from apps.core.amounts import ath, format_uath
    from apps.core.models import ChainHead, ModuleAccount, TxKind
    from apps.core.parameters import ensure_defaults
    from apps.governance import services
    from apps.governance.models import Choice, Proposal, ProposalStatus

    call_command("migrate", verbosity=0)
    ensure_defaults()
    ledger.genesis()
    rng = random.Random(7)

    proposer = get_user_model().objects.create(username="bench-proposer")
    wallet = services.open_wallet(proposer)
    ledger.transfer(
        ledger.module_account(ModuleAccount.FAUCET), wallet, ath(20_000), kind=TxKind.FAUCET, memo="bench funds"
    )

    t0 = time.perf_counter()
    head = ChainHead.objects.get(pk=1)
    base = head.height
    now = timezone.now().isoformat(sep=" ")
    first_id = None
    power = [0] * n  # each holder's power at the snapshot, computed independently of the database
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT COALESCE(MAX(id), 0) FROM core_account")
        first_id = cur.fetchone()[0] + 1
        batch = 50_000
        for start in range(0, n, batch):
            rows = []
            for i in range(start, min(n, start + batch)):
                rows.append((f"ath1bench{i:034d}", "user", "", "", 0, 0, 0, 0, 0, now))
            cur.executemany(
                "INSERT INTO core_account (address, kind, module, label, available, escrowed, collateral, bonded,"
                " unbonding, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
        # Every holder is funded at some height before the snapshot; a fifth
        # of them change balance again before it (bonding, spending).
        height = base
        for start in range(0, n, batch):
            rows = []
            for i in range(start, min(n, start + batch)):
                height += 1
                available = rng.randrange(1, ath(50_000))
                bonded = rng.randrange(0, ath(10_000)) if i % 3 == 0 else 0
                rows.append((first_id + i, height, available, 0, 0, bonded, 0))
                if i % 5 == 0:
                    height += 1
                    available, bonded = available // 2, bonded + available // 4
                    unbonding = available // 8
                    rows.append((first_id + i, height, available, 0, 0, bonded, unbonding))
                    power[i] = available + bonded + unbonding
                else:
                    power[i] = available + bonded
            cur.executemany(
                "INSERT INTO core_checkpoint (account_id, height, available, escrowed, collateral, bonded, unbonding)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
        # The checkpoints stand in for that many transactions: the next real
        # posting (the proposal's deposit) comes after all of them.
        ChainHead.objects.filter(pk=1).update(height=height)
    print(f"built {n:,} holders with {height - base:,} checkpoints in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    proposal = services.create_proposal(
        proposer,
        kind="text",
        title="Benchmark proposal",
        description="One million voters.",
        deposit=ath(10_000),
    )
    create_s = time.perf_counter() - t0
    proposer_power = ath(10_000)  # 20,000 funded, 10,000 locked as the deposit before the snapshot
    expected_total = sum(power) + proposer_power
    assert proposal.snapshot_power == expected_total, (proposal.snapshot_power, expected_total)

    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        # Tokens that arrive after the snapshot: large, and they must not count.
        after = proposal.snapshot_height
        rows = []
        for i in range(0, n, 10):
            after += 1
            rows.append((first_id + i, after, ath(1_000_000), 0, 0, 0, 0))
        cur.executemany(
            "INSERT INTO core_checkpoint (account_id, height, available, escrowed, collateral, bonded, unbonding)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        ChainHead.objects.filter(pk=1).update(height=after)
        choices = [Choice.YES] * 55 + [Choice.NO] * 25 + [Choice.ABSTAIN] * 12 + [Choice.VETO] * 8
        expected = {c: 0 for c in Choice.values}
        for start in range(0, n, 50_000):
            rows = []
            for i in range(start, min(n, start + 50_000)):
                choice = choices[rng.randrange(100)]
                expected[choice] += power[i]
                rows.append((proposal.pk, first_id + i, choice, power[i], 0, now, now))
            cur.executemany(
                "INSERT INTO governance_vote (proposal_id, voter_id, choice, power, changes, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
    print(f"inserted {n:,} votes in {time.perf_counter() - t0:.1f} s")
    cur = connection.cursor()
    cur.execute("ANALYZE")

    t0 = time.perf_counter()
    total = services.total_power_at(proposal.snapshot_height)
    snapshot_s = time.perf_counter() - t0
    assert total == expected_total, (total, expected_total)

    t0 = time.perf_counter()
    live = services.tally(proposal)
    tally_s = time.perf_counter() - t0
    assert live.voters == n and {c: getattr(live, c) for c in Choice.values} == expected, live

    # Voting ends: move the proposal's end to now instead of waiting 24 epochs.
    Proposal.objects.filter(pk=proposal.pk).update(voting_end_epoch=epochs.current_number())
    t0 = time.perf_counter()
    done = services.tally_due()
    finalise_s = time.perf_counter() - t0
    final = done[0]
    assert final.status == live.outcome == ProposalStatus.PASSED and final.yes == expected[Choice.YES]

    print(f"voters: {n:,}; snapshot voting power {format_uath(total)}; cast {format_uath(live.cast)}")
    print(f"create proposal (deposit + snapshot total):   {create_s:7.3f} s")
    print(f"snapshot total voting power ({n:,} holders): {snapshot_s:7.3f} s")
    print(f"tally ({n:,} votes, one aggregate):           {tally_s:7.3f} s")
    print(f"tally_due() (tally, refund, status):           {finalise_s:7.3f} s")
    print(f"TALLY TIME: {tally_s:.3f} s (finalise {finalise_s:.3f} s) on SQLite for {n:,} voters")


if __name__ == "__main__":
    main()

"""Every movement of stake is a ledger posting (docs/rules.md §6, §7b): after
a redelegation, the public ledger alone says who backs which checker with
how much, and rebuilds both checkers' reward index (F1) exactly."""

import importlib.util
from pathlib import Path

import pytest

from apps.core.models import LedgerTransaction, TxKind
from apps.staking.models import Delegation, RewardPeriod

from .public_network import FIRST, build

spec = importlib.util.spec_from_file_location("audit", Path(__file__).resolve().parents[2] / "scripts" / "audit.py")
audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)


def public_ledger(client) -> list:
    txs, params = [], {"page_size": 500}
    while True:
        page = client.get("/api/v1/public/transactions/", params).json()
        txs += page["results"]
        if not page["next_cursor"]:
            return txs
        params["cursor"] = page["next_cursor"]


@pytest.mark.django_db
def test_a_redelegation_is_posted_and_both_checkers_index_rebuilds_from_the_ledger(client):
    net = build()
    src, dst = net["checkers"][0], net["checkers"][1]
    wallet = net["delegator"].wallet
    move = LedgerTransaction.objects.get(kind=TxKind.REDELEGATE)
    assert move.meta["src"] == src.pk and move.meta["dst"] == dst.pk and move.meta["epoch"] == FIRST + 1
    assert sorted((e.account_id, e.bucket, e.amount) for e in move.entries.all()) == [
        (wallet.pk, "bonded", -1_000_000_000),
        (wallet.pk, "bonded", 1_000_000_000),
    ]

    txs = public_ledger(client)
    # Who has how much where, from the ledger alone, equals the staking tables.
    held = {}
    for d in Delegation.objects.select_related("delegator"):
        held.setdefault(d.checker_id, {}).setdefault(d.delegator.address, 0)
        held[d.checker_id][d.delegator.address] += d.amount
    assert audit.stakes(txs) == held
    assert held[dst.pk][wallet.address] == 1_000_000_000 and held[src.pk][wallet.address] == 1_000_000_000

    rebuilt = audit.rebuild_index(txs)
    for checker in (src, dst):
        periods = list(RewardPeriod.objects.filter(checker=checker).order_by("period"))
        assert len(periods) == net["last"] - FIRST + 1
        assert rebuilt[checker.pk] == [
            {
                "epoch": p.epoch,
                "reward": p.reward,
                "commission": p.commission,
                "eligible_stake": p.eligible_stake,
                "cumulative_ratio": int(p.cumulative_ratio),
            }
            for p in periods
        ]
    # Moved before epoch FIRST + 1's round was fixed, the stake shares that
    # epoch's reward at the destination and no longer at the source.
    dst_eligible = {p.epoch: p.eligible_stake for p in RewardPeriod.objects.filter(checker=dst)}
    src_eligible = {p.epoch: p.eligible_stake for p in RewardPeriod.objects.filter(checker=src)}
    assert dst_eligible[FIRST + 1] - dst_eligible[FIRST] == 1_000_000_000
    assert src_eligible[FIRST] - src_eligible[FIRST + 1] == 1_000_000_000

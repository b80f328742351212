"""Rewards paid to delegators, recomputed from the public ledger alone: each
payout posting itemises the positions it pays (holder, checker, stake, the
reward x SCALE it pays from, the last distribution included), and
scripts/audit.py replays every position from the stake postings and the
reward index to find each amount exact; and finds a forged one."""

import pytest

from apps.core.models import LedgerTransaction, TxKind
from apps.staking import services as staking
from apps.staking.models import RewardClaim
from apps.staking.services._common import SCALE

from .public_network import FIRST, build
from .test_audit_script import forge, run_audit


def payouts():
    return [t for t in LedgerTransaction.objects.filter(kind=TxKind.REWARD).order_by("height") if "split" not in t.meta]


@pytest.mark.django_db(transaction=True)
def test_every_payout_is_itemised_and_the_audit_recomputes_it(live_server):
    net = build(payouts=True)
    txs = payouts()
    claims = list(RewardClaim.objects.select_related("delegator", "checker"))
    # Claims (one of them from two checkers at once), auto-compounds and
    # positions closed by an undelegation and by a redelegation.
    assert {c.automatic for c in claims} == {True, False}
    assert RewardClaim.objects.filter(delegator__owner=net["compounder"], automatic=False).exists()
    assert any(len(t.meta["positions"]) == 2 for t in txs)
    assert RewardClaim.objects.filter(delegator__owner=net["closer"], automatic=True).count() == 2
    # Each position a posting pays, as its claim records it.
    paid = sorted((p["address"], p["checker"], int(p["amount"])) for t in txs for p in t.meta["positions"])
    assert paid == sorted((c.delegator.address, c.checker_id, c.amount) for c in claims)
    for t in txs:
        for p in t.meta["positions"]:
            assert int(p["reward_scaled"]) // SCALE == int(p["amount"]) and int(p["stake"]) > 0

    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 difference(s)" in done.stdout
    assert f"checked {len(txs):>8}  reward payout positions\n" in done.stdout, done.stdout
    assert f"checked {len(txs):>8}  reward payout posting\n" in done.stdout, done.stdout


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("automatic", [False, True])
def test_a_forged_payout_amount_is_found(live_server, automatic):
    net = build(payouts=True)
    tx = next(t for t in payouts() if t.meta["automatic"] is automatic)
    pool = next(e for e in tx.entries.select_related("account") if e.amount < 0)
    # One uATH more to the holder, in the meta and the legs alike (reward x
    # SCALE too, so the posting agrees with itself): the chain still verifies.
    p = tx.meta["positions"][0]
    forged = {**p, "amount": str(int(p["amount"]) + 1), "reward_scaled": str(int(p["reward_scaled"]) + SCALE)}
    meta = {**tx.meta, "positions": [forged, *tx.meta["positions"][1:]]}
    forge(tx.height, {(p["address"], "available"): 1, (pool.account.address, "available"): -1}, meta=meta)
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 1, done.stdout
    assert "ledger #" not in done.stdout
    assert f"reward payout #{tx.height}: reward payout positions is" in done.stdout, done.stdout


@pytest.mark.django_db(transaction=True)
def test_positions_a_slash_closes_are_paid_and_recomputed(live_server):
    net = build(payouts=True)
    before = len(payouts())
    # The whole stake of checker 1: every position on it closes, its reward paid.
    staking.slash_checker(net["checkers"][1], 1_000_000, net["last"], "test", epoch=net["last"] + 1)
    closed = payouts()[before:]
    assert len(closed) == 1 and closed[0].meta["automatic"] and len(closed[0].meta["positions"]) >= 2
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"checked {before + 1:>8}  reward payout positions\n" in done.stdout, done.stdout

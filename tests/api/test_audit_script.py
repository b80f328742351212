"""scripts/audit.py, run as an outsider would run it: a separate process
that reads the public API of a live server over HTTP, on a network with
faults (a failed rental node, a lying checker, a redelegation, a
parameter change), and finds every amount exact; and finds it when an
amount is not."""

import subprocess
import sys
from pathlib import Path

import pytest

from apps.core.hashing import tx_hash
from apps.core.models import Entry, LedgerTransaction
from apps.settlement.models import EpochSettlement, SettlementLine
from apps.staking.models import SlashEvent

from .public_network import FIRST, build

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audit.py"


def run_audit(url, first, last):
    return subprocess.run(
        [sys.executable, str(SCRIPT), url, str(first), str(last)], capture_output=True, text=True, timeout=300
    )


@pytest.mark.django_db(transaction=True)
def test_the_audit_recomputes_every_posting_with_no_difference(live_server):
    net = build()
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 difference(s)" in done.stdout
    for what in (
        "report signature",
        "consensus validity",
        "provider rewards",
        "checker rewards",
        "F1 cumulative_ratio",
        "refund posting",
        "downtime slash posting",
        "ledger postings",
        "community share posting",
        "rental settle posting",
    ):
        assert f"  {what}\n" in done.stdout, (what, done.stdout)
    # Every posting the settlements of the range made was recomputed, not
    # only those a check happened to look at.
    high = EpochSettlement.objects.get(epoch=net["last"]).ledger_height
    made = LedgerTransaction.objects.filter(
        height__lte=high,
        meta__epoch__gte=FIRST,
        kind__in=["emission", "reward", "slash", "rental_refund", "rental_settle", "unbond_mature"],
    )
    assert made.count() >= 4 * (net["last"] - FIRST + 1)
    assert f"checked {made.count():>8}  settlement postings recomputed\n" in done.stdout, done.stdout


@pytest.mark.django_db(transaction=True)
def test_the_audit_fails_on_an_amount_that_does_not_add_up(live_server):
    net = build()
    line = SettlementLine.objects.filter(kind="provider_reward", epoch=FIRST).first()
    SettlementLine.objects.filter(pk=line.pk).update(amount=line.amount + 1)
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 1
    assert "provider rewards" in done.stdout


def test_a_bad_address_is_exit_2():
    done = run_audit("http://127.0.0.1:9", 0, 1)
    assert done.returncode == 2


def forge(height: int, shift: dict, meta: dict | None = None) -> None:
    """Change the legs of the posting at ``height`` (address -> bucket ->
    uATH added) and rehash the chain from there: a ledger whose hashes,
    double entry and balances all still verify, so only recomputing what
    the posting should be finds it."""
    tx = LedgerTransaction.objects.get(height=height)
    if meta is not None:
        LedgerTransaction.objects.filter(pk=tx.pk).update(meta=meta)
    for e in tx.entries.select_related("account"):
        delta = shift.get((e.account.address, e.bucket))
        if delta:
            Entry.objects.filter(pk=e.pk).update(amount=e.amount + delta)
    prev = LedgerTransaction.objects.get(height=height - 1).hash
    for t in LedgerTransaction.objects.filter(height__gte=height).order_by("height"):
        legs = [(e.account.address, e.bucket, e.amount) for e in t.entries.select_related("account").order_by("seq")]
        digest = tx_hash(
            height=t.height, prev_hash=prev, kind=t.kind, memo=t.memo, meta=t.meta, created_at=t.created_at, legs=legs
        )
        LedgerTransaction.objects.filter(pk=t.pk).update(prev_hash=prev, hash=digest)
        prev = digest


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("kind", "part", "found"),
    [("emission", "community", "community share posting"), ("rental_settle", None, "rental settle posting")],
)
def test_the_audit_recomputes_postings_a_consistent_forged_chain_still_gets_wrong(live_server, kind, part, found):
    net = build()
    txs = LedgerTransaction.objects.filter(kind=kind, meta__epoch=FIRST + 1)
    tx = next(t for t in txs if part is None or t.meta.get("part") == part)
    entries = list(tx.entries.select_related("account").order_by("seq"))
    # One uATH from a credited leg back to the debited one: still double entry.
    credit = next(e for e in entries if e.amount > 1 and e.bucket == "available")
    debit = next(e for e in entries if e.amount < 0)
    forge(tx.height, {(credit.account.address, credit.bucket): -1, (debit.account.address, debit.bucket): 1})
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 1, done.stdout
    assert "ledger #" not in done.stdout  # the chain itself verifies
    assert found in done.stdout, done.stdout


@pytest.mark.django_db(transaction=True)
def test_a_checker_slash_is_recomputed_holder_by_holder(live_server):
    net = build(contradicting_checker=1)
    checker = net["checkers"][1]
    slash = SlashEvent.objects.select_related("tx").get(checker=checker)
    cuts = slash.tx.meta["stake_cuts"][str(checker.pk)]
    assert len(cuts) == 2  # the operator's self-stake and the delegator's redelegated stake
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "  checker slash stake cuts\n" in done.stdout

    # One uATH of the cut moved from one holder to the other, in the meta and
    # the legs alike: the burn, the line and the chain all still agree.
    a, b = sorted(cuts)
    meta = {**slash.tx.meta, "stake_cuts": {str(checker.pk): {a: str(int(cuts[a]) - 1), b: str(int(cuts[b]) + 1)}}}
    forge(slash.tx.height, {(a, "bonded"): 1, (b, "bonded"): -1}, meta=meta)
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 1, done.stdout
    assert "ledger #" not in done.stdout
    assert "checker slash stake cuts is" in done.stdout, done.stdout

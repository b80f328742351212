"""verify_ledger catches tampering and names the first bad transaction."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.core import ledger
from apps.core.amounts import ath
from apps.core.models import Account, Checkpoint, Entry, LedgerTransaction
from apps.core.verify import verify_ledger

from ..factories import WalletFactory, fund


@pytest.fixture
def chain(genesis):
    alice, bob = WalletFactory(), WalletFactory()
    fund(alice, ath(100))  # height 2
    txs = [ledger.transfer(alice, bob, ath(i + 1), memo=f"payment {i}") for i in range(5)]  # heights 3..7
    return alice, bob, txs


def run_verify():
    call_command("verify_ledger")


def test_an_honest_chain_verifies(chain, capsys):
    run_verify()
    assert "Ledger OK: 7 transactions" in capsys.readouterr().out
    assert verify_ledger().ok


def test_editing_a_memo_is_caught_and_named(chain):
    _, _, txs = chain
    LedgerTransaction.objects.filter(height=4).update(memo="payment to mallory")
    with pytest.raises(CommandError, match="first bad transaction: #4"):
        run_verify()
    report = verify_ledger()
    assert report.first_bad_height == 4
    assert any("stored hash does not match" in p.message for p in report.problems)


def test_editing_an_amount_and_the_balances_is_caught(chain):
    alice, bob, txs = chain
    # A careful forger changes the leg, both balances and the checkpoints...
    tx = txs[2]  # height 5
    Entry.objects.filter(tx=tx, amount__lt=0).update(amount=-ath(1))
    Entry.objects.filter(tx=tx, amount__gt=0).update(amount=ath(1))
    # ...but the hash no longer matches the content.
    report = verify_ledger()
    assert not report.ok
    assert report.first_bad_height == 5


def test_rehashing_one_transaction_breaks_the_next_link(chain):
    from apps.core.hashing import tx_hash

    tx = LedgerTransaction.objects.get(height=3)
    tx.memo = "rewritten"
    legs = [(e.account.address, e.bucket, e.amount) for e in tx.entries.select_related("account")]
    tx.hash = tx_hash(
        height=3, prev_hash=tx.prev_hash, kind=tx.kind, memo=tx.memo, meta=tx.meta, created_at=tx.created_at, legs=legs
    )
    tx.save()
    report = verify_ledger()
    assert report.first_bad_height == 4
    assert any("previous-hash link" in p.message for p in report.problems)


def test_a_balance_changed_behind_the_ledger_is_caught(chain):
    alice, _, _ = chain
    Account.objects.filter(pk=alice.pk).update(available=alice.available + 1)
    report = verify_ledger()
    assert not report.ok
    assert any("entries add up to" in p.message for p in report.problems)
    assert any("not the supply" in p.message for p in report.problems)


def test_a_forged_checkpoint_is_caught(chain):
    alice, _, _ = chain
    Checkpoint.objects.filter(account=alice, height=6).update(available=ath(1_000_000))
    report = verify_ledger()
    assert report.first_bad_height == 6
    assert any("checkpoint" in p.message for p in report.problems)


def test_a_deleted_transaction_is_caught(chain):
    tx = LedgerTransaction.objects.get(height=7)
    Entry.objects.filter(tx=tx).delete()
    Checkpoint.objects.filter(height=7).delete()
    tx.delete()
    with pytest.raises(CommandError):
        run_verify()


def test_the_command_exits_non_zero_on_a_real_database(tmp_path):
    """As an auditor runs it: a separate process on a database file, tampered with by hand."""
    import os
    import sqlite3
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["AETHIR_VAR_DIR"] = str(tmp_path)

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], env=env, capture_output=True, text=True)

    assert manage("migrate", "-v0").returncode == 0
    assert manage("genesis").returncode == 0
    ok = manage("verify_ledger")
    assert ok.returncode == 0, ok.stderr
    with sqlite3.connect(tmp_path / "aethir.sqlite3") as db:
        db.execute("UPDATE core_ledgertransaction SET memo = 'forged' WHERE height = 1")
    bad = manage("verify_ledger")
    assert bad.returncode == 1
    assert "first bad transaction: #1" in bad.stderr

"""Signed checkpoints: a rewritten and re-hashed history passes the chain's
own check, but not a checkpoint saved before the rewrite."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.core import checkpoints, ledger
from apps.core.amounts import ath
from apps.core.hashing import tx_hash
from apps.core.models import ChainHead, LedgerTransaction, SignedCheckpoint
from apps.explorer import api as explorer_api

from ..factories import WalletFactory, fund


@pytest.fixture
def chain(genesis):
    alice, bob = WalletFactory(), WalletFactory()
    fund(alice, ath(100))  # height 2
    for i in range(5):  # heights 3..7
        ledger.transfer(alice, bob, ath(i + 1), memo=f"payment {i}")
    return alice, bob


def rewrite_history(from_height: int, memo: str) -> None:
    """What a dishonest operator with database access does: change one old
    transaction and re-hash every transaction after it, and the head."""
    prev = LedgerTransaction.objects.get(height=from_height - 1).hash
    for tx in LedgerTransaction.objects.filter(height__gte=from_height).order_by("height"):
        if tx.height == from_height:
            tx.memo = memo
        legs = [(e.account.address, e.bucket, e.amount) for e in tx.entries.select_related("account").order_by("seq")]
        tx.prev_hash = prev
        tx.hash = tx_hash(
            height=tx.height,
            prev_hash=prev,
            kind=tx.kind,
            memo=tx.memo,
            meta=tx.meta,
            created_at=tx.created_at,
            legs=legs,
        )
        tx.save(update_fields=["memo", "prev_hash", "hash"])
        prev = tx.hash
    ChainHead.objects.filter(pk=1).update(hash=prev)


def save(tmp_path, document, name="saved.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def published(*cps):
    return [checkpoints.as_published(cp) for cp in cps]


def test_a_checkpoint_signs_the_head_and_anyone_can_check_it(chain):
    cp = checkpoints.sign_epoch(3)
    head = ChainHead.objects.get(pk=1)
    assert (cp.height, cp.head_hash, cp.supply) == (7, head.hash, head.supply)
    assert cp.genesis_hash == LedgerTransaction.objects.get(height=1).hash
    assert checkpoints.signature_valid(checkpoints.as_published(cp))
    # One per epoch: signing again returns the same statement.
    ledger.transfer(*chain, ath(1))
    assert checkpoints.sign_epoch(3).pk == cp.pk
    assert SignedCheckpoint.objects.count() == 1


@pytest.mark.parametrize(
    "field,value",
    [
        ("height", 6),
        ("head_hash", "0" * 64),
        ("supply", "1"),
        ("epoch", 99),
        ("signed_at", "2020-01-01T00:00:00.000000Z"),
    ],
)
def test_changing_any_signed_field_breaks_the_signature(chain, field, value):
    statement = checkpoints.as_published(checkpoints.sign_epoch(1))
    statement[field] = value
    assert not checkpoints.signature_valid(statement)


def test_the_chain_passes_its_own_check_after_a_rewrite_but_not_a_saved_checkpoint(chain, tmp_path, capsys):
    saved = save(tmp_path, published(checkpoints.sign_epoch(1)))
    call_command("verify_ledger", against=saved)
    assert "Checkpoints OK: the chain matches 1 signed checkpoint(s) up to #7." in capsys.readouterr().out

    rewrite_history(4, "payment to mallory")
    call_command("verify_ledger")  # the forger re-hashed carefully: the chain agrees with itself
    with pytest.raises(CommandError, match=r"first height that differs: #7\."):
        call_command("verify_ledger", against=saved)
    assert "transaction #7 now has hash" in capsys.readouterr().err


def test_checkpoints_bracket_the_rewrite_and_saved_transactions_name_it_exactly(chain, tmp_path, capsys):
    early = checkpoints.sign_epoch(1)  # at #7
    alice, bob = chain
    for i in range(3):  # heights 8..10
        ledger.transfer(alice, bob, ath(1), memo=f"later {i}")
    late = checkpoints.sign_epoch(2)  # at #10
    saved_txs = [{"height": t.height, "hash": t.hash} for t in LedgerTransaction.objects.order_by("height")]

    rewrite_history(9, "rewritten")
    only_checkpoints = save(tmp_path, published(late, early), "cps.json")
    with pytest.raises(CommandError, match=r"first height that differs: #10\."):
        call_command("verify_ledger", against=only_checkpoints)
    assert "still matched at #7, so history was rewritten between #8 and #10" in capsys.readouterr().err

    with_transactions = save(tmp_path, {"checkpoints": published(late, early), "transactions": saved_txs}, "all.json")
    with pytest.raises(CommandError, match=r"first height that differs: #9\."):
        call_command("verify_ledger", against=with_transactions)


def test_a_forged_or_foreign_checkpoint_proves_nothing(chain, tmp_path, capsys):
    genuine = checkpoints.as_published(checkpoints.sign_epoch(1))
    forged = dict(genuine, head_hash="f" * 64)
    with pytest.raises(CommandError):
        call_command("verify_ledger", against=save(tmp_path, [forged]))
    assert "no valid signature" in capsys.readouterr().err

    # Validly signed by some other key: refused when the auditor pins the real one.
    other = Ed25519PrivateKey.generate()
    foreign = dict(genuine, public_key=other.public_key().public_bytes_raw().hex())
    foreign["signature"] = other.sign(
        checkpoints.statement(
            epoch=1,
            height=genuine["height"],
            head_hash=genuine["head_hash"],
            genesis_hash=genuine["genesis_hash"],
            supply=int(genuine["supply"]),
            signed_at=genuine["signed_at"],
        )
    ).hex()
    with pytest.raises(CommandError):
        call_command("verify_ledger", against=save(tmp_path, [foreign]), public_key=genuine["public_key"])
    assert "not the expected key" in capsys.readouterr().err
    call_command("verify_ledger", against=save(tmp_path, [genuine]), public_key=genuine["public_key"])


def test_unreadable_sources_are_a_clear_error(chain, tmp_path):
    with pytest.raises(CommandError, match="Cannot read checkpoints"):
        call_command("verify_ledger", against=str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("[" * 100_000)
    with pytest.raises(CommandError, match="not JSON"):
        call_command("verify_ledger", against=str(bad))
    with pytest.raises(CommandError, match="No signed checkpoints"):
        call_command("verify_ledger", against=save(tmp_path, {"results": []}))


def test_before_any_settlement_the_latest_is_404(genesis, client):
    assert client.get("/api/ledger/checkpoints/latest/").status_code == 404
    assert "No epoch has been settled yet." in client.get("/explorer/checkpoints/").content.decode()


def test_verify_follows_the_published_pages(chain, live_server, monkeypatch, capsys):
    monkeypatch.setattr(explorer_api.CheckpointPages, "page_size", 2)
    alice, bob = chain
    for e in range(5):
        ledger.transfer(alice, bob, ath(1))
        checkpoints.sign_epoch(e)
    call_command("verify_ledger", against=f"{live_server.url}/api/ledger/checkpoints/")
    assert "matches 5 signed checkpoint(s) up to #12" in capsys.readouterr().out


def test_the_key_comes_from_the_environment_and_production_requires_one(settings, genesis):
    seed = "11" * 32
    checkpoints.signing_key.cache_clear()
    try:
        settings.LEDGER_SIGNING_KEY = seed
        expected = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed)).public_key().public_bytes_raw().hex()
        assert checkpoints.sign_epoch(0).public_key == expected

        checkpoints.signing_key.cache_clear()
        settings.LEDGER_SIGNING_KEY = "not hex"
        with pytest.raises(ImproperlyConfigured, match="64 hex digits"):
            checkpoints.signing_key()

        checkpoints.signing_key.cache_clear()
        settings.LEDGER_SIGNING_KEY = ""
        settings.DEMO_MODE = False
        with pytest.raises(ImproperlyConfigured, match="Set LEDGER_SIGNING_KEY"):
            checkpoints.signing_key()
    finally:
        checkpoints.signing_key.cache_clear()


def test_demo_mode_generates_one_key_and_keeps_it(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.LEDGER_SIGNING_KEY = ""
    checkpoints.signing_key.cache_clear()
    try:
        first = checkpoints.public_key_hex()
        checkpoints.signing_key.cache_clear()
        assert checkpoints.public_key_hex() == first
        assert (tmp_path / checkpoints.KEY_FILE).stat().st_mode & 0o077 == 0
    finally:
        checkpoints.signing_key.cache_clear()

"""One lock order for every ledger path (chain head, then accounts by id) and
conflicts retried, not answered with a 500.

On PostgreSQL, faucet claims and transfers to the same wallet race for real:
a claim that locked the wallet before the chain head deadlocked with a
transfer that held the head and waited for the wallet."""

import re
import threading
from pathlib import Path

import pytest
from django.db import OperationalError, connection, connections, transaction

from apps.accounts import services as wallet_services
from apps.accounts.services import open_wallet
from apps.core import ledger, retry
from apps.core.amounts import ath
from apps.core.models import Account, ChainHead, LedgerTransaction
from apps.core.parameters import ensure_defaults
from apps.core.verify import verify_ledger

from ..factories import UserFactory, fund

APPS = Path(__file__).resolve().parents[2] / "apps"


def test_accounts_are_locked_only_through_the_ledger():
    """Row locks on accounts outside apps/core/ledger.py would be taken in an
    order the ledger cannot see; ledger.lock_accounts takes the head first."""
    offenders = []
    for path in APPS.rglob("*.py"):
        if path.name == "ledger.py" and path.parent.name == "core":
            continue
        text = path.read_text()
        if re.search(r"Account\.objects\.select_for_update\(", text):
            offenders.append(str(path.relative_to(APPS)))
    assert offenders == [], f"lock accounts with ledger.lock_accounts(), not select_for_update: {offenders}"


class _Conflict(Exception):
    sqlstate = "40P01"


def test_retry_reruns_the_outermost_transaction_on_a_deadlock(db):
    """Under pytest-django's own transaction only the inner call runs (no
    retry possible there); so the decision itself is tested directly."""
    err = OperationalError("deadlock detected")
    err.__cause__ = _Conflict()
    assert retry.is_retryable(err)
    assert retry.is_retryable(OperationalError("database is locked"))
    assert not retry.is_retryable(OperationalError("no such table: x"))


@pytest.mark.django_db(transaction=True)
def test_retry_runs_the_whole_block_again_and_gives_up_after_a_bound():
    calls = []

    def flaky():
        calls.append(connection.in_atomic_block)
        if len(calls) < 3:
            raise OperationalError("database is locked")
        return "done"

    assert retry.run_atomic(flaky) == "done"
    assert calls == [True, True, True]  # each try inside its own transaction

    calls.clear()

    def always():
        calls.append(1)
        raise OperationalError("database is locked")

    with pytest.raises(OperationalError):
        retry.run_atomic(always, attempts=3)
    assert len(calls) == 3

    calls.clear()
    with transaction.atomic(), pytest.raises(OperationalError):
        retry.run_atomic(always)  # nested: retrying inside is useless, so it runs once
    assert len(calls) == 1


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_faucet_claims_and_transfers_to_one_wallet(settings):
    settings.DEMO_MODE = True
    settings.FAUCET_CLAIMS_PER_DAY = 1_000
    ensure_defaults()
    ledger.genesis()
    supply = ChainHead.objects.get().supply
    target = UserFactory()
    target_wallet = open_wallet(target)
    senders = [UserFactory() for _ in range(8)]
    for s in senders:
        fund(open_wallet(s), ath(100))
    rounds, per_round = 4, 16
    results, lock = [], threading.Lock()

    def act(i, barrier):
        try:
            barrier.wait()
            if i % 2:
                wallet_services.claim_faucet(target)
                outcome = "claim"
            else:
                wallet_services.send(senders[(i // 2) % len(senders)], target_wallet.address, ath(1))
                outcome = "send"
        except Exception as exc:  # noqa: BLE001 - any escape is the failure we look for
            outcome = f"error: {type(exc).__name__}: {exc}"
        finally:
            connections.close_all()
        with lock:
            results.append(outcome)

    for _ in range(rounds):
        barrier = threading.Barrier(per_round)
        threads = [threading.Thread(target=act, args=(i, barrier)) for i in range(per_round)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    errors = [r for r in results if r.startswith("error")]
    assert errors == []
    claims, sends = results.count("claim"), results.count("send")
    assert claims == sends == rounds * per_round // 2
    target_wallet.refresh_from_db()
    assert target_wallet.available == claims * ath(settings.FAUCET_AMOUNT_ATH) + sends * ath(1)
    assert sum(Account.objects.get(pk=open_wallet(s).pk).available for s in senders) == ath(100) * len(
        senders
    ) - sends * ath(1)
    heights = list(LedgerTransaction.objects.order_by("height").values_list("height", flat=True))
    assert heights == list(range(1, len(heights) + 1))
    assert ChainHead.objects.get().supply == supply
    assert verify_ledger().ok

"""Idempotency keys: the same request sent twice under one key moves money
once, on the API and in the HTML forms."""

import re
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from apps.core import idempotency, ledger
from apps.core.amounts import ath
from apps.core.models import Account, IdempotencyKey, LedgerTransaction
from apps.core.verify import verify_ledger

from ..factories import UserFactory, WalletFactory, fund


@pytest.fixture
def payer(user):
    fund(user.wallet, ath(100))
    return user


@pytest.fixture
def api(client, payer):
    client.force_login(payer)
    return client


def send(client, to, amount="5", key="key-1", **extra):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(
        "/api/wallet/send/",
        {"to_address": to.address, "amount_ath": amount},
        content_type="application/json",
        headers=headers,
        **extra,
    )


def available(account):
    return Account.objects.get(pk=account.pk).available


def test_the_same_key_and_body_moves_money_once_and_returns_the_first_answer(api, payer):
    bob = WalletFactory()
    first = send(api, bob)
    height = LedgerTransaction.objects.count()
    second = send(api, bob)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert LedgerTransaction.objects.count() == height
    assert available(bob) == ath(5)
    assert available(payer.wallet) == ath(95)
    assert verify_ledger().ok


def test_a_different_body_under_the_same_key_is_refused_and_moves_nothing(api, payer):
    bob = WalletFactory()
    send(api, bob, "5")
    refused = send(api, bob, "6")
    assert refused.status_code == 409
    assert "different request" in refused.json()["detail"]
    assert available(bob) == ath(5)


def test_without_a_key_every_request_runs(api):
    bob = WalletFactory()
    send(api, bob, key=None)
    send(api, bob, key=None)
    assert available(bob) == ath(10)


def test_keys_belong_to_whoever_sent_them(api, payer, other_user):
    bob = WalletFactory()
    send(api, bob)
    fund(other_user.wallet, ath(10))
    other = Client()
    other.force_login(other_user)
    # The same key from someone else is their own first request, not a replay.
    response = send(other, bob)
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert available(bob) == ath(10)


def test_a_refused_request_keeps_no_answer_so_the_fixed_one_can_reuse_the_key(api, payer):
    bob = WalletFactory()
    too_much = send(api, bob, "1000")
    assert too_much.status_code == 400
    assert not IdempotencyKey.objects.exists()
    assert send(api, bob, "1000").status_code == 400  # ran again, not replayed
    fund(payer.wallet, ath(1_000))
    assert send(api, bob, "1000").status_code == 201
    assert available(bob) == ath(1_000)


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "tab\tkey"])
def test_a_malformed_key_is_a_400_with_a_message(api, key):
    response = send(api, WalletFactory(), key=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert not LedgerTransaction.objects.filter(kind="transfer").exists()


def test_anonymous_requests_are_still_refused_as_before(client, genesis):
    response = send(client, WalletFactory())
    assert response.status_code == 403
    assert not IdempotencyKey.objects.exists()


def form_key(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', html).group(1)


def test_a_double_submitted_wallet_form_sends_once(client, payer):
    client.force_login(payer)
    bob = WalletFactory()
    page = client.get("/accounts/wallet/").content.decode()
    key = form_key(page)
    body = {"to_address": bob.address, "amount": "7", "memo": "", "idempotency_key": key}
    first = client.post("/accounts/wallet/send/", body)
    second = client.post("/accounts/wallet/send/", body)
    assert second.status_code == first.status_code
    assert second["Idempotent-Replayed"] == "true"
    assert available(bob) == ath(7)
    # The next rendering of the form carries a fresh key: a new send goes through.
    fresh = form_key(client.get("/accounts/wallet/").content.decode())
    assert fresh != key
    client.post("/accounts/wallet/send/", dict(body, idempotency_key=fresh))
    assert available(bob) == ath(14)


def test_a_resent_htmx_form_with_changed_fields_is_refused(client, payer):
    client.force_login(payer)
    bob = WalletFactory()
    key = form_key(client.get("/accounts/wallet/").content.decode())
    body = {"to_address": bob.address, "amount": "7", "memo": "", "idempotency_key": key}
    client.post("/accounts/wallet/send/", body, headers={"HX-Request": "true"})
    again = client.post("/accounts/wallet/send/", dict(body, amount="8"), headers={"HX-Request": "true"})
    assert again.status_code == 409
    assert "Reload the page" in again.content.decode()
    assert available(bob) == ath(7)


def test_every_form_that_moves_money_carries_a_key(client, payer):
    client.force_login(payer)
    html = client.get("/accounts/wallet/").content.decode()
    assert html.count('name="idempotency_key"') == 2  # faucet and send


def test_old_answers_are_forgotten(api, payer):
    bob = WalletFactory()
    send(api, bob)
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    # Past its lifetime the key is a new request...
    assert "Idempotent-Replayed" not in send(api, bob)
    assert available(bob) == ath(10)
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    # ...and the scheduler's prune removes what is left.
    assert idempotency.prune() == 1
    assert not IdempotencyKey.objects.exists()


def test_the_schema_documents_the_header_on_mutating_operations(client, genesis):
    schema = client.get("/api/schema/", headers={"Accept": "application/json"}).json()
    send_op = schema["paths"]["/api/wallet/send/"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in send_op["parameters"])
    wallet_get = schema["paths"]["/api/wallet/"]["get"]
    assert not any(p["name"] == "Idempotency-Key" for p in wallet_get.get("parameters", []))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent requests need PostgreSQL's row locks")
@pytest.mark.django_db(transaction=True)
def test_ten_copies_sent_at_once_move_money_once():
    ledger.genesis()
    payer, bob = UserFactory(), WalletFactory()
    fund(payer.wallet, ath(100))
    start = threading.Barrier(10, timeout=30)
    answers, errors, lock = [], [], threading.Lock()
    clients = []
    for _ in range(10):
        c = Client()
        c.force_login(payer)
        clients.append(c)

    def one(c):
        try:
            start.wait()
            r = send(c, bob, "3", key="same-key")
            with lock:
                answers.append((r.status_code, r.json()["height"], r.get("Idempotent-Replayed")))
        except Exception as exc:  # surfaced below, not lost in the thread
            with lock:
                errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(answers) == 10
    assert {(status, height) for status, height, _ in answers} == {(201, answers[0][1])}
    assert sum(1 for *_, replayed in answers if replayed is None) == 1
    assert available(bob) == ath(3)
    assert verify_ledger().ok

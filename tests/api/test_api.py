"""The REST API: the same ledger data, exact amounts, owner-only actions."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.core import ledger
from apps.core.amounts import ath
from apps.core.hashing import tx_hash
from apps.core.models import LedgerTransaction
from apps.core.verify import verify_ledger

from ..factories import WalletFactory, fund


@pytest.fixture
def api():
    return APIClient()


def test_amounts_are_exact_strings(api, genesis):
    alice = WalletFactory()
    fund(alice, 123_456_789)
    data = api.get(reverse("api:account", args=[alice.address])).json()
    assert data["available"] == "123456789" and data["total"] == "123456789"
    assert data["total_display"] == "123.456789 ATH"
    summary = api.get(reverse("api:ledger-summary")).json()
    assert summary["supply"] == str(ath(42_000_000_000))


def test_an_auditor_can_recompute_every_hash_from_the_api(api, genesis):
    alice, bob = WalletFactory(), WalletFactory()
    fund(alice, ath(3))
    ledger.transfer(alice, bob, 7, memo="µ-payment", meta={"ref": 1})
    prev = "0" * 64
    listing = api.get(reverse("api:transactions")).json()
    heights = sorted(t["height"] for t in listing["results"])
    from django.utils.dateparse import parse_datetime

    for h in heights:
        t = api.get(reverse("api:transaction", args=[h])).json()
        legs = [(e["address"], e["bucket"], int(e["amount"])) for e in t["entries"]]
        recomputed = tx_hash(
            height=h,
            prev_hash=t["prev_hash"],
            kind=t["kind"],
            memo=t["memo"],
            meta=t["meta"],
            created_at=parse_datetime(t["created_at"]),
            legs=legs,
        )
        assert t["prev_hash"] == prev and recomputed == t["hash"]
        prev = t["hash"]


def test_account_entries_and_verify(api, genesis):
    alice = WalletFactory()
    fund(alice, ath(1))
    entries = api.get(reverse("api:account-entries", args=[alice.address])).json()["results"]
    assert entries[0]["amount"] == str(ath(1)) and entries[0]["kind"] == "faucet"
    assert api.get(reverse("api:ledger-verify")).json()["ok"] is True
    LedgerTransaction.objects.filter(height=2).update(memo="forged")
    report = api.get(reverse("api:ledger-verify")).json()
    assert report["ok"] is False and report["first_bad_height"] == 2


def test_wallet_endpoints_need_login(api, genesis):
    assert api.get(reverse("api:wallet")).status_code == 403
    assert api.post(reverse("api:faucet")).status_code == 403
    assert api.post(reverse("api:send"), {"to_address": "x", "amount": "1"}).status_code == 403


def test_faucet_and_send_through_the_api(api, user, other_user):
    api.force_authenticate(user)
    assert api.post(reverse("api:faucet")).status_code == 201
    wallet = api.get(reverse("api:wallet")).json()
    assert wallet["account"]["available"] == str(ath(10_000)) and wallet["faucet"]["used"] == 1
    response = api.post(
        reverse("api:send"), {"to_address": other_user.wallet.address, "amount_ath": "0.5"}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert [e["amount"] for e in response.json()["entries"]] == ["-500000", "500000"]
    response = api.post(reverse("api:send"), {"to_address": other_user.wallet.address, "amount": 250}, format="json")
    assert response.status_code == 201
    other_user.wallet.refresh_from_db()
    assert other_user.wallet.available == 500_250


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"amount": "-5"}, "positive whole number"),
        ({"amount": 1.5}, "integer or a string"),
        ({"amount": "0"}, "more than zero"),
        ({"amount_ath": "1.0000001"}, "six decimals"),
        ({"amount": "1", "amount_ath": "1"}, "exactly one"),
        ({}, "exactly one"),
        ({"amount": str(ath(20_000))}, "Insufficient"),
        ({"amount": "1", "to_address": "nobody"}, "No wallet"),
        ({"amount": True}, "integer or a string"),
        ({"amount": "9" * 30}, "larger than the whole supply"),
    ],
)
def test_bad_send_gets_400_with_a_message_and_changes_nothing(api, user, other_user, payload, message):
    fund(user.wallet, ath(10))
    api.force_authenticate(user)
    height = LedgerTransaction.objects.latest("height").height
    body = {"to_address": other_user.wallet.address, **payload}
    response = api.post(reverse("api:send"), body, format="json")
    assert response.status_code == 400
    assert message in response.content.decode()
    assert LedgerTransaction.objects.latest("height").height == height
    assert verify_ledger().ok


def test_openapi_schema_and_docs_are_served_offline(api, genesis):
    schema = api.get(reverse("api:schema"), HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/transactions/{height}/" in paths and "/api/wallet/send/" in paths
    docs = api.get("/api/docs/").content.decode()
    assert "swagger" in docs.lower() and "cdn" not in docs.lower() and "unpkg" not in docs.lower()
    assert "//" not in "".join(part.split('"')[0] for part in docs.split('src="')[1:])  # local sources only

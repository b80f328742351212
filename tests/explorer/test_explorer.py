"""The explorer pages show the ledger as it is."""

from django.urls import reverse

from apps.core import ledger
from apps.core.amounts import ath
from apps.core.models import LedgerTransaction, TxKind

from ..factories import WalletFactory, fund


def test_latest_transactions_newest_first_and_paginated(client, genesis):
    alice, bob = WalletFactory(), WalletFactory()
    fund(alice, ath(100))
    for i in range(30):
        ledger.transfer(alice, bob, 1, memo=f"tick {i}")
    body = client.get(reverse("explorer:index")).content.decode()
    assert body.index("tick 29") < body.index("tick 28")
    assert "tick 2<" not in body  # past the first page
    assert "Page 1 of 2" in body
    page2 = client.get(reverse("explorer:index") + "?page=2").content.decode()
    assert "tick 2<" in page2 and "Genesis" in page2


def test_filter_by_kind_and_htmx_partial(client, genesis):
    alice = WalletFactory()
    fund(alice, ath(1))
    body = client.get(reverse("explorer:index") + "?kind=faucet", headers={"HX-Request": "true"}).content.decode()
    assert body.lstrip().startswith('<div id="tx-table"')
    assert "test funds" in body and "Genesis: the whole supply" not in body


def test_transaction_page_shows_legs_and_hashes(client, genesis):
    alice, bob = WalletFactory(), WalletFactory()
    fund(alice, ath(5))
    tx = ledger.transfer(alice, bob, 1_234_567, memo="invoice 7")
    body = client.get(reverse("explorer:transaction", args=[tx.height])).content.decode()
    assert "invoice 7" in body and tx.hash in body and tx.prev_hash in body
    assert "-1.234567 ATH" in body and "+1.234567 ATH" in body
    assert client.get(reverse("explorer:transaction", args=[9999])).status_code == 404


def test_account_page_shows_balances_and_history(client, genesis):
    alice = WalletFactory(label="Alice")
    fund(alice, ath(12))
    ledger.move(alice, "available", "bonded", ath(2), kind=TxKind.DELEGATE)
    body = client.get(reverse("explorer:account", args=[alice.address])).content.decode()
    assert "Alice" in body and "10 ATH" in body and "2 ATH" in body and "12 ATH" in body
    assert "Delegation" in body and "Faucet" in body
    assert client.get(reverse("explorer:account", args=["ath1missing"])).status_code == 404


def test_search_goes_to_height_address_or_hash(client, genesis):
    alice = WalletFactory()
    tx = LedgerTransaction.objects.get(height=1)
    assert client.get(reverse("explorer:index") + "?q=1").url == reverse("explorer:transaction", args=[1])
    assert client.get(reverse("explorer:index") + f"?q={alice.address}").url == reverse(
        "explorer:account", args=[alice.address]
    )
    assert client.get(reverse("explorer:index") + f"?q={tx.hash}").url == reverse("explorer:transaction", args=[1])


def test_accounts_list_searches(client, genesis):
    WalletFactory(label="Zebra Labs")
    body = client.get(reverse("explorer:accounts") + "?q=zebra").content.decode()
    assert "Zebra Labs" in body and "Community pool" not in body


def test_verify_page_reports_intact_and_tampered(client, genesis):
    fund(WalletFactory(), ath(1))
    assert "The ledger is intact" in client.post(reverse("explorer:verify")).content.decode()
    LedgerTransaction.objects.filter(height=2).update(memo="forged")
    body = client.post(reverse("explorer:verify")).content.decode()
    assert "Verification failed" in body and "#2" in body


def test_every_area_is_reachable_from_the_navigation(client, genesis):
    body = client.get("/").content.decode()
    for name in ["marketplace:index", "staking:index", "governance:index", "monitoring:index", "explorer:index"]:
        url = reverse(name)
        assert f'href="{url}"' in body
        assert client.get(url).status_code == 200
    assert "42,000,000,000 ATH" in body


def test_parameters_page_lists_values_bounds_and_history(client, genesis):
    body = client.get(reverse("governance:parameters")).content.decode()
    assert "Protocol fee on rentals" in body and "20%" in body and "0% … 50%" in body
    assert "33.4%" in body and "Default at genesis" in body

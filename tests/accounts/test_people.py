"""Sign-up, log-in, wallets, the faucet and sending ATH through the forms."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import reverse

from apps.core.amounts import ath
from apps.core.models import Account, LedgerTransaction, TxKind

from ..factories import PASSWORD, UserFactory, fund


def test_sign_up_creates_a_user_with_a_wallet_and_logs_in(client, genesis):
    response = client.post(
        reverse("accounts:signup"),
        {"username": "newdev", "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"},
    )
    assert response.status_code == 302 and response.url == reverse("accounts:wallet")
    user = get_user_model().objects.get(username="newdev")
    assert Account.objects.get(owner=user).available == 0
    page = client.get(reverse("accounts:wallet"))
    assert b"Your wallet" in page.content and user.wallet.address.encode() in page.content


def test_sign_up_refuses_mismatched_and_weak_passwords(client, genesis):
    response = client.post(reverse("accounts:signup"), {"username": "x", "password1": "123", "password2": "124"})
    assert response.status_code == 200
    assert b"didn" in response.content  # "The two password fields didn't match."
    assert not get_user_model().objects.filter(username="x").exists()


def test_log_in_log_out_and_change_password(client, user):
    response = client.post(reverse("accounts:login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("accounts:wallet")).status_code == 200
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": "another-long-phrase-7", "new_password2": "another-long-phrase-7"},
    )
    assert response.status_code == 302
    client.post(reverse("accounts:logout"))
    assert client.get(reverse("accounts:wallet")).status_code == 302
    assert not Client().login(username=user.username, password=PASSWORD)
    assert Client().login(username=user.username, password="another-long-phrase-7")


def test_wrong_password_does_not_log_in(client, user):
    response = client.post(reverse("accounts:login"), {"username": user.username, "password": "nope"})
    assert response.status_code == 200 and b"correct username and password" in response.content


def test_faucet_pays_exactly_and_is_limited_per_day(logged_in, user, settings):
    settings.FAUCET_CLAIMS_PER_DAY = 2
    for _ in range(2):
        assert logged_in.post(reverse("accounts:faucet")).status_code == 302
    user.wallet.refresh_from_db()
    assert user.wallet.available == ath(20_000)
    height = LedgerTransaction.objects.latest("height").height
    response = logged_in.post(reverse("accounts:faucet"), follow=True)
    assert b"2 times in the last 24 hours" in response.content
    user.wallet.refresh_from_db()
    assert user.wallet.available == ath(20_000)
    assert LedgerTransaction.objects.latest("height").height == height


def test_faucet_is_off_outside_demo_mode(logged_in, user, settings):
    settings.DEMO_MODE = False
    response = logged_in.post(reverse("accounts:faucet"), follow=True)
    assert b"only runs in demo mode" in response.content
    user.wallet.refresh_from_db()
    assert user.wallet.available == 0


def test_anonymous_cannot_use_the_faucet_or_send(client, genesis):
    height = LedgerTransaction.objects.latest("height").height
    for name in ["accounts:faucet", "accounts:send"]:
        response = client.post(reverse(name), {"to_address": "x", "amount": "1"})
        assert response.status_code == 302 and reverse("accounts:login") in response.url
    assert LedgerTransaction.objects.latest("height").height == height


def test_csrf_is_enforced_on_wallet_forms(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(reverse("accounts:faucet")).status_code == 403


def test_faucet_via_htmx_returns_the_updated_panel(logged_in, user):
    response = logged_in.post(reverse("accounts:faucet"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="wallet-panel">')
    assert "10,000 ATH" in body and "Faucet funds received" in body


def test_send_moves_exact_amounts(logged_in, user, other_user):
    fund(user.wallet, ath(10))
    response = logged_in.post(
        reverse("accounts:send"), {"to_address": other_user.wallet.address, "amount": "2.000001", "memo": "thanks"}
    )
    assert response.status_code == 200
    user.wallet.refresh_from_db(), other_user.wallet.refresh_from_db()
    assert user.wallet.available == ath(8) - 1
    assert other_user.wallet.available == ath(2) + 1
    tx = LedgerTransaction.objects.latest("height")
    assert (tx.kind, tx.memo, tx.actor) == (TxKind.TRANSFER, "thanks", user)


@pytest.mark.parametrize(
    "amount, message",
    [
        ("-1", "more than zero"),
        ("0", "more than zero"),
        ("abc", "Enter a number"),
        ("1.0000001", "six decimals"),
        ("99999999999999999999999", "larger than the whole supply"),
        ("11", "Insufficient available balance"),
        ("1" * 60, "at most 40 characters"),
    ],
)
def test_send_refuses_bad_amounts_and_changes_nothing(logged_in, user, other_user, amount, message):
    fund(user.wallet, ath(10))
    height = LedgerTransaction.objects.latest("height").height
    response = logged_in.post(reverse("accounts:send"), {"to_address": other_user.wallet.address, "amount": amount})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert LedgerTransaction.objects.latest("height").height == height
    user.wallet.refresh_from_db()
    assert user.wallet.available == ath(10)


def test_send_refuses_unknown_and_own_address(logged_in, user):
    fund(user.wallet, ath(10))
    for address, message in [("ath1nobody", "No wallet has that address"), (user.wallet.address, "your own wallet")]:
        response = logged_in.post(reverse("accounts:send"), {"to_address": address, "amount": "1"})
        assert response.status_code == 400 and message in response.content.decode()


def test_send_cannot_target_module_accounts(logged_in, user):
    fund(user.wallet, ath(10))
    pool = Account.objects.module("community_pool")
    response = logged_in.post(reverse("accounts:send"), {"to_address": pool.address, "amount": "1"})
    assert response.status_code == 400


def test_script_in_a_memo_renders_inert(logged_in, user, other_user, client):
    fund(user.wallet, ath(10))
    logged_in.post(
        reverse("accounts:send"),
        {"to_address": other_user.wallet.address, "amount": "1", "memo": "<script>alert(1)</script>"},
    )
    tx = LedgerTransaction.objects.latest("height")
    for url in [reverse("explorer:index"), reverse("explorer:transaction", args=[tx.height])]:
        body = Client().get(url).content.decode()
        assert "<script>alert(1)</script>" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


@override_settings(DEMO_MODE=True)
def test_a_user_only_ever_sees_their_own_wallet(client, user, other_user):
    client.force_login(other_user)
    body = client.get(reverse("accounts:wallet")).content.decode()
    assert other_user.wallet.address in body and user.wallet.address not in body


def test_factory_users_can_log_in(genesis):
    u = UserFactory()
    assert Client().login(username=u.username, password=PASSWORD)


def test_log_in_attempts_are_throttled(client, user):
    for _ in range(10):
        assert (
            client.post(reverse("accounts:login"), {"username": user.username, "password": "wrong"}).status_code == 200
        )
    blocked = client.post(reverse("accounts:login"), {"username": user.username, "password": PASSWORD})
    assert blocked.status_code == 429 and "Too many log-in attempts" in blocked.content.decode()
    assert "_auth_user_id" not in client.session  # even the right password waits


def test_faucet_clicks_are_throttled(logged_in, user, settings):
    settings.FAUCET_CLAIMS_PER_DAY = 100
    settings.FAUCET_CLAIMS_PER_ADDRESS_PER_DAY = 100  # this one is about the clicks per user
    for _ in range(10):
        logged_in.post(reverse("accounts:faucet"))
    response = logged_in.post(reverse("accounts:faucet"), follow=True)
    assert "Too many faucet requests" in response.content.decode()
    user.wallet.refresh_from_db()
    assert user.wallet.available == ath(10_000) * 10

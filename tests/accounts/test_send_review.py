"""The wallet's Send form asks for a review first: the exact amount, the fee
and the balance afterwards, with nothing moved until the person confirms."""

from django.urls import reverse

from apps.core.amounts import ath
from apps.core.models import LedgerTransaction

from ..factories import fund


def test_review_states_amount_fee_and_balance_after_and_moves_nothing(logged_in, user, other_user):
    fund(user.wallet, ath(10))
    height = LedgerTransaction.objects.latest("height").height
    body = {"to_address": other_user.wallet.address, "amount": "2.5", "memo": "thanks", "review": "1"}
    response = logged_in.post(reverse("accounts:send"), body)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="send-review"' in page
    assert other_user.wallet.address in page
    assert "2.5 ATH" in page and "7.5 ATH" in page  # the amount, and what is left afterwards
    assert 'data-testid="review-fee">0 ATH' in page
    assert LedgerTransaction.objects.latest("height").height == height
    user.wallet.refresh_from_db()
    assert user.wallet.available == ath(10)

    # The confirm button posts the same fields without the review flag, and the transfer happens.
    confirm = {k: v for k, v in body.items() if k != "review"}
    assert logged_in.post(reverse("accounts:send"), confirm).status_code == 200
    user.wallet.refresh_from_db()
    assert user.wallet.available == 7_500_000


def test_review_refuses_what_the_send_would_refuse(logged_in, user, other_user):
    fund(user.wallet, ath(1))
    response = logged_in.post(
        reverse("accounts:send"), {"to_address": other_user.wallet.address, "amount": "2", "review": "1"}
    )
    assert response.status_code == 400
    assert "send-review" not in response.content.decode()
    assert "1 ATH available" in response.content.decode()
    response = logged_in.post(reverse("accounts:send"), {"to_address": "nobody", "amount": "1", "review": "1"})
    assert response.status_code == 400 and "No wallet has that address" in response.content.decode()


def test_the_wallet_page_always_has_a_message_area_for_htmx_answers(logged_in, user):
    # An htmx answer swaps its messages into #messages out of band: the page must carry it
    # even when it has no message of its own, or the browser drops the answer's message.
    page = logged_in.get(reverse("accounts:wallet")).content.decode()
    assert 'id="messages"' in page

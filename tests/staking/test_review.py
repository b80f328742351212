"""Delegating and undelegating from the checker page go through a review
that says in numbers what will happen: the amount, the fee, what a slash
would take under which rule, and when unbonding ends. Nothing moves until
the person confirms."""

from django.urls import reverse

from apps.core import epochs, parameters
from apps.core.amounts import ath
from apps.staking import services
from apps.staking.models import Delegation, UnbondingEntry

from .test_pages_and_api import snapshot


def test_delegate_review_states_amount_fee_slash_and_unbonding_then_confirm_delegates(client, checker, funded):
    client.force_login(funded)
    page = client.get(reverse("staking:checker", args=[checker.pk])).content.decode()
    assert page.count('name="review" value="1"') == 1  # the delegate form asks for a review

    before = snapshot()
    r = client.post(reverse("staking:delegate"), {"checker": checker.pk, "amount": "300", "review": "1"})
    assert r.status_code == 200
    text = r.content.decode()
    assert snapshot() == before
    assert 'data-testid="review-amount">300 ATH' in text
    assert 'data-testid="review-fee">0 ATH' in text
    assert "700 ATH" in text  # available afterwards
    rate = parameters.get("misreport_slash")
    assert rate == 10_000
    assert "Your delegation can be slashed." in text and "1%" in text and "3 ATH of this delegation" in text
    unbonding = parameters.get("unbonding_epochs")
    assert f"Undelegating takes {unbonding} epochs" in text
    assert f"epoch {epochs.current_number() + unbonding}" in text

    r = client.post(reverse("staking:delegate"), {"checker": checker.pk, "amount": "300"})
    assert r.status_code == 302
    assert sum(
        Delegation.objects.filter(checker=checker)
        .exclude(delegator__owner=checker.operator)
        .values_list("amount", flat=True)
    ) == ath(300)


def test_delegate_review_refuses_what_delegating_would_refuse(client, checker, funded):
    client.force_login(funded)
    before = snapshot()
    r = client.post(reverse("staking:delegate"), {"checker": checker.pk, "amount": "5000", "review": "1"})
    assert r.status_code == 400
    assert "You have 1,000 ATH available; you cannot delegate 5,000 ATH." in r.content.decode()
    assert "stake-review" not in r.content.decode()
    assert snapshot() == before


def test_undelegate_review_states_when_unbonding_ends_and_what_stays_slashable(client, checker, funded):
    now = epochs.current_number()
    services.delegate(funded, checker, ath(200), epoch=now)
    client.force_login(funded)
    before = snapshot()
    r = client.post(reverse("staking:undelegate"), {"checker": checker.pk, "amount": "50", "review": "1"})
    assert r.status_code == 200
    text = r.content.decode()
    assert snapshot() == before and not UnbondingEntry.objects.exists()
    maturity = now + parameters.get("unbonding_epochs")
    assert f"at epoch {maturity}, after {parameters.get('unbonding_epochs')} epochs of unbonding" in text
    assert "150 ATH" in text  # still delegated afterwards
    assert "Unbonding stake can still be slashed." in text and "0.5 ATH of this amount" in text

    r = client.post(reverse("staking:undelegate"), {"checker": checker.pk, "amount": "50"})
    assert r.status_code == 302
    entry = UnbondingEntry.objects.get()
    assert (entry.amount, entry.maturity_epoch) == (ath(50), maturity)


def test_undelegate_review_refuses_more_than_delegated(client, checker, funded):
    services.delegate(funded, checker, ath(10), epoch=epochs.current_number())
    client.force_login(funded)
    r = client.post(reverse("staking:undelegate"), {"checker": checker.pk, "amount": "11", "review": "1"})
    assert r.status_code == 400
    assert "You have 10 ATH delegated to Alpha; you cannot move 11 ATH." in r.content.decode()


def test_redelegate_review_states_amount_fee_slash_and_when_it_can_move_again_then_confirm_moves(
    client, checker, operator, funded
):
    beta = services.activate_checker(operator, "Beta", ath(10_000), commission_rate=30_000, epoch=0)
    now = epochs.current_number()
    services.delegate(funded, checker, ath(200), epoch=now)
    client.force_login(funded)
    page = client.get(reverse("staking:checker", args=[checker.pk])).content.decode()
    assert page.count('name="review" value="1"') == 3  # delegate, undelegate and redelegate forms

    before = snapshot()
    data = {"src": checker.pk, "dst": beta.pk, "amount": "50"}
    r = client.post(reverse("staking:redelegate"), {**data, "review": "1"})
    assert r.status_code == 200
    text = r.content.decode()
    assert snapshot() == before
    assert "Move stake from Alpha to Beta?" in text
    assert 'data-testid="review-amount">50 ATH' in text and 'data-testid="review-fee">0 ATH' in text
    assert "150 ATH" in text  # still delegated to Alpha afterwards
    maturity = now + parameters.get("unbonding_epochs")
    assert f"from epoch {maturity}, after {parameters.get('unbonding_epochs')} epochs" in text
    assert (
        "Your delegation can be slashed." in text and "If Beta signs" in text and "0.5 ATH of this delegation" in text
    )
    assert f"Until epoch {maturity}, this stake also answers for faults Alpha committed before the move." in text

    r = client.post(reverse("staking:redelegate"), data)
    assert r.status_code == 302
    assert sum(
        Delegation.objects.filter(checker=beta, delegator__owner=funded).values_list("amount", flat=True)
    ) == ath(50)


def test_redelegate_review_refuses_what_moving_would_refuse(client, checker, operator, funded):
    beta = services.activate_checker(operator, "Beta", ath(10_000), commission_rate=30_000, epoch=0)
    services.delegate(funded, checker, ath(10), epoch=epochs.current_number())
    client.force_login(funded)
    before = snapshot()
    r = client.post(reverse("staking:redelegate"), {"src": checker.pk, "dst": beta.pk, "amount": "11", "review": "1"})
    assert r.status_code == 400
    assert "You have 10 ATH delegated to Alpha; you cannot move 11 ATH." in r.content.decode()
    assert "stake-review" not in r.content.decode()
    assert snapshot() == before

""" "My rewards and penalties" shows a delegator their own share: the part of
a checker's slash taken from their stake (not the checker's whole slash),
the rewards paid to them, and their own rental charges and refunds."""

from django.urls import reverse

from apps.core import ledger
from apps.core.amounts import ath, format_uath
from apps.core.models import ModuleAccount
from apps.settlement.models import LineKind, SettlementLine
from apps.staking import services


def test_a_delegator_sees_their_own_slash_not_the_checkers(client, checker, funded):
    services.delegate(funded, checker, ath(500), epoch=1)
    event = services.slash_checker(checker, 10_000, 1, "self-contradicting report", epoch=2)
    # The checker's own settlement line carries the whole slash (operator's and delegator's).
    SettlementLine.objects.create(
        epoch=2, kind=LineKind.CHECKER_SLASH, checker=checker, amount=-event.total_amount, reason="whole slash"
    )
    assert event.total_amount == ath(105)  # 1% of 10,000 self-stake + 500 delegated

    client.force_login(funded)
    body = client.get(reverse("settlement:mine")).content.decode()
    assert 'data-testid="my-slashed">5 ATH<' in body  # 1% of the delegator's 500 ATH
    assert "whole slash" not in body and "105 ATH" not in body
    assert "self-contradicting report" in body


def test_rewards_paid_to_the_delegator_are_theirs(client, checker, funded):
    services.delegate(funded, checker, ath(500), epoch=1)
    services.distribute(checker, ath(105), 2, ledger.module_account(ModuleAccount.EMISSION_RESERVE))
    paid = services.claim_rewards(funded, checker)
    assert paid > 0
    client.force_login(funded)
    body = client.get(reverse("settlement:mine")).content.decode()
    assert f'data-testid="my-rewards-paid">{format_uath(paid)}<' in body

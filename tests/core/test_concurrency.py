"""Concurrent spends against one account on PostgreSQL: only the affordable
ones succeed and the balance ends exact."""

import pytest
from django.db import connection

from apps.core import ledger
from apps.core.amounts import ath
from apps.core.models import Account, LedgerTransaction
from apps.core.verify import verify_ledger

from ..factories import WalletFactory, fund, race

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_spends_only_the_affordable_ones_succeed():
    ledger.genesis()
    payer = WalletFactory()
    payees = [WalletFactory() for _ in range(20)]
    fund(payer, ath(7) + 500_000)  # affords exactly 7 spends of 1 ATH

    def spend(payee):
        try:
            ledger.transfer(Account.objects.get(pk=payer.pk), payee, ath(1))
            return "ok"
        except ledger.InsufficientFunds:
            return "refused"

    results = race(spend, payees)

    assert results.count("ok") == 7
    assert results.count("refused") == 13
    payer.refresh_from_db()
    assert payer.available == 500_000
    assert sum(Account.objects.get(pk=p.pk).available for p in payees) == ath(7)
    heights = list(LedgerTransaction.objects.order_by("height").values_list("height", flat=True))
    assert heights == list(range(1, len(heights) + 1))  # no gaps, no duplicates
    assert verify_ledger().ok

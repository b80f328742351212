"""Two renters can never hold the same node: many threads race for the
last free node on PostgreSQL and exactly one wins."""

import pytest
from django.db import connection

from apps.accounts.services import open_wallet
from apps.core import ledger
from apps.core.amounts import ath
from apps.core.parameters import ensure_defaults
from apps.core.verify import verify_ledger
from apps.marketplace import rentals
from apps.marketplace.models import Rental, RentalMode, RentalStatus

from ..factories import UserFactory, fund, make_node, race
from .conftest import online

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]


@pytest.mark.django_db(transaction=True)
def test_concurrent_rent_of_the_last_free_node_gives_one_rental():
    ensure_defaults()
    ledger.genesis()
    node = online(make_node(name="last-one")[0])
    renters = [UserFactory() for _ in range(12)]
    for r in renters:
        fund(open_wallet(r), ath(10))

    def attempt(user):
        try:
            rentals.rent(user, node.pk, mode=RentalMode.RESERVED, epochs_=5, image="ubuntu:24.04")
            return "ok"
        except rentals.RentalError as exc:
            return str(exc)

    results = race(attempt, renters)

    assert results.count("ok") == 1, results
    assert all("just rented by someone else" in r for r in results if r != "ok")
    assert Rental.objects.filter(node=node, status=RentalStatus.ACTIVE).count() == 1
    winner = Rental.objects.get().renter
    escrowed = {r.pk: open_wallet(r).escrowed for r in renters}
    assert escrowed.pop(winner.pk) == Rental.objects.get().escrow_total
    assert set(escrowed.values()) == {0}
    assert verify_ledger().ok

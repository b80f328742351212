"""The demo's own log-ins start in a state worth looking at: the renter has
a running rental and a finished one, and seeded funds are not counted as
faucet claims."""

from django.contrib.auth import get_user_model

from apps.accounts.services import faucet_status, open_wallet
from apps.demo import seed
from apps.marketplace.models import Rental, RentalStatus


def test_the_demo_renter_has_rentals_and_every_faucet_claim_left(genesis, settings):
    settings.DEMO_MODE = True
    seed.seed(nodes=24, n_checkers=6, n_delegators=30, history_epochs=5)
    renter = get_user_model().objects.get(username="renter")
    rentals = Rental.objects.filter(renter=renter)
    assert rentals.filter(status=RentalStatus.ACTIVE).count() == 1
    assert rentals.exclude(status=RentalStatus.ACTIVE).count() == 1  # three epochs, run their course
    status = faucet_status(open_wallet(renter))
    assert status["used"] == 0 and status["left"] == status["limit"]

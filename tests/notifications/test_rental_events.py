"""A rental that fails over tells its renter, and the downtime slash that
goes with it tells the node's provider, each once, in the app."""

import pytest

from apps.marketplace import rentals
from apps.marketplace.models import CollateralSlash, RentalMode
from apps.marketplace.services import settle_rentals
from apps.notifications import detect
from apps.notifications.models import Event, Notification

from ..factories import make_node
from ..marketplace.conftest import clock, consensus, node, online, renter  # noqa: F401 - fixtures
from ..marketplace.test_billing import IMAGE


def look():
    """Two passes of the worker: a new record is read the pass after it appears."""
    detect.run_all()
    detect.run_all()


@pytest.mark.django_db
def test_a_failover_reaches_the_renter_and_the_slash_reaches_the_provider(clock, node, renter):  # noqa: F811
    spare, _ = make_node(name="spare-h100", price_ath="1.5", region="eu-central")
    online(spare)
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=10, image=IMAGE, auto_replace=True)
    look()  # the worker was already running: nothing before this is news
    consensus(node, 10, uptime=0, latency=None)
    clock.epoch = 11
    assert settle_rentals(10)["replacements"] == 1
    rental.refresh_from_db()
    # The SLA credit to the renter and the downtime slash both come out of the collateral.
    slashes = {s.pk: s for s in CollateralSlash.objects.filter(node=node)}
    assert len(slashes) == 2
    look()
    look()  # looking again tells nobody twice

    [moved] = Notification.objects.filter(user=renter, event=Event.RENTAL_FAILED_OVER)
    assert str(rental.pk) in moved.title and spare.name in moved.title
    assert moved.url == f"/marketplace/rentals/{rental.replaced_by.pk}/"
    told = Notification.objects.filter(user=node.provider, event=Event.NODE_SLASHED)
    assert sorted(n.key for n in told) == sorted(f"collateral-slash:{pk}" for pk in slashes)
    for note in told:
        slash = slashes[int(note.key.split(":")[1])]
        assert node.name in note.title and note.body == slash.reason
        assert note.data["amount_uath"] == slash.amount and note.in_app
    # Neither hears of the other's event.
    assert not Notification.objects.filter(user=renter, event=Event.NODE_SLASHED).exists()
    assert not Notification.objects.filter(user=node.provider, event=Event.RENTAL_FAILED_OVER).exists()

"""The rental page's "Paid to provider" is what the provider received (the
charge less the protocol fee), and the renter's own statement lists the
epoch's charge."""

from django.urls import reverse

from apps.marketplace import rentals
from apps.marketplace.models import RentalMode
from apps.marketplace.services import settle_rentals

from ..factories import make_node
from .conftest import consensus, online

IMAGE = "ollama/ollama:latest"


def test_paid_to_provider_is_net_of_the_fee_and_the_renter_sees_the_charge(client, clock, node, renter):
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=3, image=IMAGE)
    consensus(node, 10)
    settle_rentals(10)
    client.force_login(renter)
    page = client.get(rental.get_absolute_url()).content.decode()
    # 33,333 uATH charged: 26,667 to the provider, 6,666 protocol fee.
    assert 'data-testid="paid-to-provider">0.026667 ATH<' in page
    assert "of 0.033333 ATH charged; 0.006666 ATH protocol fee" in page

    mine = client.get(reverse("settlement:mine")).content.decode()
    assert 'data-testid="my-rental-charged">0.033333 ATH<' in mine
    assert f"#{rental.pk}</a>" in mine


def test_wallet_history_gives_each_rental_of_a_settlement_its_own_line(client, clock, node, renter):
    other = make_node(name="second-h100", gpu="h100-80gb", count=1, region="eu-central", price_ath="2")[0]
    online(other, 1_000_000)
    first = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=3, image=IMAGE)
    second = rentals.rent(renter, other.pk, mode=RentalMode.RESERVED, epochs_=3, image=IMAGE)
    consensus(node, 10)
    consensus(other, 10)
    settle_rentals(10)
    client.force_login(renter)
    page = client.get(reverse("accounts:wallet")).content.decode()
    assert page.count('data-testid="entry-part"') == 2
    assert f"Rental #{first.pk} on {node.name}, epoch 10: charged" in page
    assert f"Rental #{second.pk} on second-h100, epoch 10: charged" in page


def test_a_rental_names_its_last_epoch_the_same_way_everywhere(client, clock, node, renter):
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=3, image=IMAGE)
    last = rental.end_epoch - 1
    client.force_login(renter)
    page = client.get(rental.get_absolute_url()).content.decode()
    assert f"runs through epoch {last}" in page and f"{rental.start_epoch} – {last}" in page
    client.force_login(node.provider)
    provider_page = client.get(reverse("marketplace:provider-node", args=[node.pk])).content.decode()
    assert f"through epoch {last}" in provider_page

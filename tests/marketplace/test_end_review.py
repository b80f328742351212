"""Ending a rental from its page goes through a review that says in numbers
what happens: the refund now, what stays in escrow for the current epoch and
how it splits between provider and fee. Nothing changes until confirmed."""

from django.urls import reverse

from apps.accounts.services import open_wallet
from apps.core import parameters
from apps.core.models import LedgerTransaction
from apps.marketplace import rentals
from apps.marketplace.models import Rental, RentalMode, RentalStatus

from ..factories import UserFactory
from .test_pages import IMAGE, market  # noqa: F401  (the fixture)


def test_end_review_states_refund_and_split_then_confirm_ends(client, market, renter):  # noqa: F811
    rental = rentals.rent(renter, market["h100"].pk, mode=RentalMode.RESERVED, epochs_=5, image=IMAGE)
    client.force_login(renter)
    page = client.get(rental.get_absolute_url()).content.decode()
    assert 'name="review" value="1"' in page

    height = LedgerTransaction.objects.latest("height").height
    r = client.post(reverse("marketplace:rental-end", args=[rental.pk]), {"review": "1"})
    assert r.status_code == 200
    text = r.content.decode()
    review = rentals.preview_end(renter, rental.pk)
    price = rental.price_per_epoch
    # The current epoch is kept for settlement; the rest comes back.
    assert review["kept"] == price and review["refund"] == 4 * price
    fee = price * parameters.get("protocol_fee") // 1_000_000
    assert (review["kept_to_provider"], review["kept_fee"]) == (price - fee, fee)
    assert 'data-testid="review-refund"' in text and 'data-testid="confirm-end"' in text
    assert LedgerTransaction.objects.latest("height").height == height
    assert Rental.objects.get().status == RentalStatus.ACTIVE

    before = open_wallet(renter).available
    r = client.post(reverse("marketplace:rental-end", args=[rental.pk]), follow=True)
    assert "of unserved time is back in your wallet" in r.content.decode()
    assert open_wallet(renter).available == before + 4 * price
    assert Rental.objects.get().status == RentalStatus.ENDED


def test_end_review_is_the_owners_only(client, market, renter):  # noqa: F811
    rental = rentals.rent(renter, market["h100"].pk, mode=RentalMode.RESERVED, epochs_=5, image=IMAGE)
    client.force_login(UserFactory())
    assert client.post(reverse("marketplace:rental-end", args=[rental.pk]), {"review": "1"}).status_code == 404
    assert Rental.objects.get().status == RentalStatus.ACTIVE

"""Renting, ending early and topping up, to the micro-ATH."""

import pytest

from apps.accounts.services import open_wallet
from apps.core.amounts import ath
from apps.core.models import LedgerTransaction, TxKind
from apps.core.verify import verify_ledger
from apps.marketplace import rentals, workload_spec
from apps.marketplace.models import Rental, RentalMode, RentalStatus

from ..factories import UserFactory, fund, make_node

IMAGE = "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime"
# 2 ATH per GPU-hour x 1 GPU x 60 s / 3600 s, rounded down.
PER_EPOCH = 33_333


def test_price_per_epoch_is_rounded_down_for_the_renter():
    assert rentals.price_per_epoch(ath(2), 1, 60) == PER_EPOCH
    assert rentals.price_per_epoch(ath(2), 8, 3600) == ath(16)
    assert rentals.hours_to_epochs(1, 60) == 60
    assert rentals.hours_to_epochs(1, 7 * 60) == 9  # ceiling: at least the hour asked


def test_reserved_rent_escrows_the_whole_duration(clock, node, renter):
    wallet = open_wallet(renter)
    before = wallet.available
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=30, image=IMAGE)
    wallet.refresh_from_db()
    assert rental.price_per_epoch == PER_EPOCH
    assert (rental.start_epoch, rental.end_epoch, rental.settled_through) == (10, 40, 9)
    assert rental.escrow_total == 30 * PER_EPOCH == 999_990
    assert wallet.escrowed == 999_990
    assert wallet.available == before - 999_990
    tx = LedgerTransaction.objects.filter(kind=TxKind.RENTAL_ESCROW).get()
    assert tx.meta == {"rental": rental.pk, "node": node.pk, "epochs": 30}
    assert verify_ledger().ok


def test_end_early_refunds_the_unserved_time_exactly(clock, node, renter):
    wallet = open_wallet(renter)
    before = wallet.available
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=30, image=IMAGE)
    clock.epoch = 14  # epochs 10..14 served (14 is under way), 15..39 not
    refund = rentals.end_rental(renter, rental.pk)
    assert refund == 25 * PER_EPOCH == 833_325
    rental.refresh_from_db()
    wallet.refresh_from_db()
    assert rental.status == RentalStatus.ENDED and rental.end_epoch == 15
    assert rental.escrow_left == 5 * PER_EPOCH  # kept for settlement of epochs 10..14
    assert wallet.escrowed == 5 * PER_EPOCH
    assert wallet.available == before - 5 * PER_EPOCH
    with pytest.raises(rentals.RentalError, match="already ended"):
        rentals.end_rental(renter, rental.pk)
    assert verify_ledger().ok


def test_end_in_the_first_epoch_keeps_exactly_one_epoch(clock, node, renter):
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=60, image=IMAGE)
    assert rentals.end_rental(renter, rental.pk) == 59 * PER_EPOCH


def test_the_node_is_free_again_after_the_rental_ends(clock, node, renter, genesis):
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=5, image=IMAGE)
    other = UserFactory()
    fund(open_wallet(other), ath(100))
    with pytest.raises(rentals.RentalError, match="just rented by someone else"):
        rentals.rent(other, node.pk, mode=RentalMode.RESERVED, epochs_=5, image=IMAGE)
    rentals.end_rental(renter, rental.pk)
    assert rentals.rent(other, node.pk, mode=RentalMode.RESERVED, epochs_=5, image=IMAGE).node_id == node.pk


def test_a_rental_whose_time_is_over_no_longer_holds_the_node(clock, node, renter, genesis):
    rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=2, image=IMAGE)
    clock.epoch = 12
    other = UserFactory()
    fund(open_wallet(other), ath(100))
    assert rentals.rent(other, node.pk, mode=RentalMode.RESERVED, epochs_=1, image=IMAGE)
    assert Rental.objects.filter(status=RentalStatus.ACTIVE).count() == 1


def test_on_demand_runs_while_escrow_covers_and_top_up_extends(clock, node, renter):
    rental = rentals.rent(renter, node.pk, mode=RentalMode.ON_DEMAND, escrow=100_000, image=IMAGE)
    assert rental.end_epoch == 10 + 3  # 100,000 // 33,333 = 3 epochs; 1 uATH remainder
    rental = rentals.top_up(renter, rental.pk, 33_332)
    assert rental.escrow_left == 133_332 and rental.end_epoch == 10 + 4  # 133,332 // 33,333 = 4 (remainder 0)
    rental = rentals.top_up(renter, rental.pk, 1)
    assert rental.end_epoch == 10 + 4 and rental.escrow_left == 133_333 == 4 * PER_EPOCH + 1
    clock.epoch = 11  # epochs 10 and 11 stay in escrow for settlement; the rest, remainder included, comes back
    assert rentals.end_rental(renter, rental.pk) == 2 * PER_EPOCH + 1
    assert verify_ledger().ok


def test_refusals_write_nothing(clock, node, renter, genesis):
    poor = UserFactory()
    fund(open_wallet(poor), 10)
    pending, _ = make_node(name="pending-node")
    height = LedgerTransaction.objects.count()
    with pytest.raises(rentals.RentalError, match="needs 0.99999 ATH in escrow; your available balance is 0.00001 ATH"):
        rentals.rent(poor, node.pk, mode=RentalMode.RESERVED, epochs_=30, image=IMAGE)
    with pytest.raises(rentals.RentalError, match="your own node"):
        rentals.rent(node.provider, node.pk, mode=RentalMode.RESERVED, epochs_=3, image=IMAGE)
    with pytest.raises(rentals.RentalError, match="not a container image"):
        rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=3, image="rm -rf /")
    with pytest.raises(rentals.RentalError, match="at least one epoch"):
        rentals.rent(renter, node.pk, mode=RentalMode.ON_DEMAND, escrow=PER_EPOCH - 1, image=IMAGE)
    with pytest.raises(rentals.RentalError, match="price changed"):
        rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=3, image=IMAGE, expected_price_per_epoch=1)
    with pytest.raises(rentals.RentalError, match="only online nodes"):
        rentals.rent(renter, pending.pk, mode=RentalMode.RESERVED, epochs_=3, image=IMAGE)
    assert not Rental.objects.exists()
    assert LedgerTransaction.objects.count() == height
    assert verify_ledger().ok


def test_nobody_ends_or_tops_up_another_persons_rental(clock, node, renter, other_user):
    rental = rentals.rent(renter, node.pk, mode=RentalMode.ON_DEMAND, escrow=ath(1), image=IMAGE)
    fund(open_wallet(other_user), ath(10))
    with pytest.raises(rentals.NotYours):
        rentals.end_rental(other_user, rental.pk)
    with pytest.raises(rentals.NotYours):
        rentals.top_up(other_user, rental.pk, ath(1))
    rental.refresh_from_db()
    assert rental.status == RentalStatus.ACTIVE and rental.escrow_total == ath(1)


@pytest.mark.parametrize(
    "image",
    [
        "ollama/ollama:latest",
        "nvcr.io/nvidia/pytorch:24.08-py3",
        "registry.local:5000/team/train@sha256:" + "a" * 64,
        "ubuntu",
    ],
)
def test_image_references_accepted(image):
    assert workload_spec.check_image(image) == image


@pytest.mark.parametrize("image", ["", "UPPER/case", "a b", "x:" + "t" * 200, "$(curl evil)"])
def test_image_references_refused(image):
    with pytest.raises(workload_spec.WorkloadError):
        workload_spec.check_image(image)

"""settle_rentals(epoch): served fees, failures, slashes, replacements, exact."""

import pytest
from django.db import transaction

from apps.accounts.services import open_wallet
from apps.core import ledger
from apps.core.amounts import ath
from apps.core.models import GpuNode, LedgerTransaction, ModuleAccount
from apps.core.verify import verify_ledger
from apps.marketplace import rentals
from apps.marketplace.models import (
    ChargeOutcome,
    CollateralSlash,
    Rental,
    RentalCharge,
    RentalMode,
    RentalStatus,
    SlashKind,
)
from apps.marketplace.services import settle_rentals

from ..factories import make_node
from .conftest import consensus, online

IMAGE = "ollama/ollama:latest"
PER_EPOCH = 33_333  # 2 ATH/GPU-hour, 1 GPU, 60 s epochs
FEE = 6_666  # 20% of 33,333, rounded down
CREDIT = 3_333  # 10% of 33,333, rounded down
REQUIRED = ath(10_000)  # H100 stake weight 10 x 1 GPU x 1,000 ATH
DOWNTIME = 3_333_330_000  # 333,333 ppm of 10,000 ATH


def balances(user):
    w = open_wallet(user)
    return w.available, w.escrowed, w.collateral


def pool():
    return ledger.module_account(ModuleAccount.COMMUNITY_POOL).available


def test_a_served_epoch_splits_the_fee_exactly(clock, node, renter):
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=3, image=IMAGE)
    consensus(node, 10)
    p_before, pool_before = balances(node.provider), pool()
    r_before = balances(renter)
    totals = settle_rentals(10)
    assert totals == {
        "rentals": 1,
        "rental_fees": PER_EPOCH,
        "protocol_fees": FEE,
        "refunds": 0,
        "sla_credits": 0,
        "collateral_slashed": 0,
        "replacements": 0,
    }
    charge = RentalCharge.objects.get()
    assert charge.outcome == ChargeOutcome.SERVED
    assert (
        charge.provider_amount == 26_667 and charge.fee == FEE and charge.provider_amount + charge.fee == charge.charge
    )
    assert balances(node.provider)[0] == p_before[0] + 26_667
    assert pool() == pool_before + FEE
    assert balances(renter) == (r_before[0], r_before[1] - PER_EPOCH, 0)
    rental.refresh_from_db()
    assert rental.settled_through == 10 and rental.released == PER_EPOCH and rental.escrow_left == 2 * PER_EPOCH
    # Idempotent: a second run pays nothing and reports the same totals.
    height = LedgerTransaction.objects.count()
    assert settle_rentals(10) == totals
    assert LedgerTransaction.objects.count() == height
    assert verify_ledger().ok


def test_no_consensus_is_charged_as_served_but_marked(clock, node, renter):
    rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=3, image=IMAGE)
    settle_rentals(10)
    charge = RentalCharge.objects.get()
    assert charge.outcome == ChargeOutcome.UNVERIFIED and charge.provider_amount == 26_667


def test_failure_refunds_in_full_credits_and_slashes_once_per_incident(clock, node, renter):
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=6, image=IMAGE)
    r_avail = balances(renter)[0]
    consensus(node, 10, uptime=900_000)  # below the 99% target
    pool_before = pool()
    totals = settle_rentals(10)
    assert (
        totals["refunds"] == PER_EPOCH and totals["sla_credits"] == CREDIT and totals["collateral_slashed"] == DOWNTIME
    )
    assert totals["rental_fees"] == 0 and totals["protocol_fees"] == 0  # no fee on refunds
    assert balances(renter)[0] == r_avail + PER_EPOCH + CREDIT
    assert pool() == pool_before + DOWNTIME
    node.refresh_from_db()
    assert node.collateral == REQUIRED - CREDIT - DOWNTIME
    assert node.paused  # below its required collateral
    assert balances(node.provider)[2] == node.collateral
    charge = RentalCharge.objects.get(epoch=10)
    assert charge.outcome == ChargeOutcome.FAILED and "uptime 90% below the SLA target 99%" in charge.reason
    slashes = list(CollateralSlash.objects.order_by("id").values_list("kind", "amount"))
    assert slashes == [(SlashKind.SLA_CREDIT, CREDIT), (SlashKind.DOWNTIME, DOWNTIME)]

    # The same incident continues: refund and credit again, no second slash.
    consensus(node, 11, latency=None, uptime=0)
    totals = settle_rentals(11)
    assert totals["collateral_slashed"] == 0 and totals["refunds"] == PER_EPOCH and totals["sla_credits"] == CREDIT
    # Recovered, then a new incident: slashed again (of what is left, capped).
    consensus(node, 12)
    assert settle_rentals(12)["rental_fees"] == PER_EPOCH
    consensus(node, 13, latency=400)
    totals = settle_rentals(13)
    assert totals["collateral_slashed"] == DOWNTIME
    assert "latency 400 ms above the SLA maximum 150 ms" in RentalCharge.objects.get(epoch=13).reason
    assert CollateralSlash.objects.filter(kind=SlashKind.DOWNTIME).count() == 2
    rental.refresh_from_db()
    assert rental.last_failure_epoch == 13
    assert rental.refunded == 3 * PER_EPOCH and rental.released == PER_EPOCH
    assert verify_ledger().ok


def test_last_epoch_finishes_the_rental_and_returns_the_remainder(clock, node, renter):
    rental = rentals.rent(renter, node.pk, mode=RentalMode.ON_DEMAND, escrow=2 * PER_EPOCH + 5, image=IMAGE)
    assert rental.end_epoch == 12
    for e in (10, 11):
        consensus(node, e)
        settle_rentals(e)
    rental.refresh_from_db()
    assert rental.status == RentalStatus.ENDED and "Escrow used up after epoch 11" in rental.end_reason
    assert rental.escrow_left == 0 and rental.refunded == 5 and rental.released == 2 * PER_EPOCH
    assert balances(renter)[1] == 0
    assert verify_ledger().ok


def test_ended_early_rental_settles_its_served_epochs(clock, node, renter):
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=10, image=IMAGE)
    clock.epoch = 11
    rentals.end_rental(renter, rental.pk)
    for e in (10, 11, 12):
        consensus(node, e)
        settle_rentals(e)
    rental.refresh_from_db()
    assert rental.released == 2 * PER_EPOCH and rental.escrow_left == 0
    assert RentalCharge.objects.filter(rental=rental).count() == 2
    assert balances(renter)[1] == 0
    assert verify_ledger().ok


def test_auto_replacement_moves_the_renter_and_the_escrow(clock, node, renter):
    spare, _ = make_node(name="spare-h100", price_ath="1.5", region="eu-central")
    online(spare)
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=10, image=IMAGE, auto_replace=True)
    consensus(node, 10, uptime=0, latency=None)
    clock.epoch = 11
    r_avail = balances(renter)[0]
    assert settle_rentals(10)["replacements"] == 1
    rental.refresh_from_db()
    new = rental.replaced_by
    assert rental.status == RentalStatus.REPLACED and new.node_id == spare.pk
    # Old rental: epoch 10 refunded, nothing else owed. New: epochs 12..19 at 1.5 ATH/h = 25,000 per epoch.
    assert rental.escrow_left == 0 and rental.end_epoch == 11
    assert (new.start_epoch, new.end_epoch, new.price_per_epoch) == (12, 20, 25_000)
    assert new.escrow_total == 8 * 25_000 and rental.carried_out == 8 * 25_000
    surplus = 9 * PER_EPOCH - 8 * 25_000  # epochs 11..19 were escrowed at 33,333
    assert balances(renter)[0] == r_avail + PER_EPOCH + CREDIT + surplus
    assert balances(renter)[1] == new.escrow_left
    assert new.image == IMAGE and new.auto_replace
    assert verify_ledger().ok


def test_without_opt_in_the_renter_is_offered_a_replacement(clock, node, renter):
    spare, _ = make_node(name="spare-a100", gpu="h200", price_ath="3", region="eu-central")
    online(spare)
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=10, image=IMAGE)
    consensus(node, 10, uptime=0, latency=None)
    assert settle_rentals(10)["replacements"] == 0
    rental.refresh_from_db()
    assert rental.status == RentalStatus.ACTIVE and rentals.can_move(rental)
    # The renter accepts a dearer node and pays the difference for the time left.
    clock.epoch = 11
    avail = balances(renter)[0]
    new = rentals.replace(renter, rental.pk, spare.pk)
    per_epoch = rentals.price_per_epoch(ath(3), 1, 60)  # 50,000
    assert (new.start_epoch, new.end_epoch, new.price_per_epoch) == (12, 20, per_epoch)
    carried = 8 * PER_EPOCH
    assert balances(renter)[0] == avail - (8 * per_epoch - carried)
    rental.refresh_from_db()
    assert rental.escrow_left == PER_EPOCH  # epoch 11, still to settle on the old node
    assert verify_ledger().ok


def test_healthy_rental_cannot_move(clock, node, renter):
    spare, _ = make_node(name="spare", region="eu-central")
    online(spare)
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=10, image=IMAGE)
    with pytest.raises(rentals.RentalError, match="healthy"):
        rentals.replace(renter, rental.pk, spare.pk)


def test_settle_runs_inside_the_callers_transaction(clock, node, renter):
    rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=3, image=IMAGE)
    consensus(node, 10)
    height = LedgerTransaction.objects.count()

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        with transaction.atomic():
            settle_rentals(10)
            raise Abort
    assert LedgerTransaction.objects.count() == height
    assert not RentalCharge.objects.exists()
    assert settle_rentals(10)["rental_fees"] == PER_EPOCH  # and a later real run still pays


def test_suspended_node_without_consensus_refunds_without_sla_credit(clock, node, renter):
    """No evidence (no valid consensus, no declaration by the provider): the
    renter is refunded, but the provider's collateral is not touched."""
    rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=3, image=IMAGE)
    GpuNode.objects.filter(pk=node.pk).update(status="suspended")
    collateral = open_wallet(node.provider).collateral
    totals = settle_rentals(10)
    assert totals["refunds"] == PER_EPOCH
    assert (totals["sla_credits"], totals["collateral_slashed"]) == (0, 0)
    assert open_wallet(node.provider).collateral == collateral
    assert not CollateralSlash.objects.exists()
    charge = RentalCharge.objects.get()
    assert (charge.outcome, charge.sla_credit) == (ChargeOutcome.FAILED, 0)
    assert "no evidence" in charge.reason
    assert Rental.objects.get().status == RentalStatus.ACTIVE
    assert verify_ledger().ok


def test_offline_node_is_the_providers_own_declaration(clock, node, renter):
    """A node its provider took offline failed by their own word: SLA credit
    and the downtime slash apply without a consensus."""
    rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=3, image=IMAGE)
    GpuNode.objects.filter(pk=node.pk).update(status="offline")
    totals = settle_rentals(10)
    assert (totals["refunds"], totals["sla_credits"], totals["collateral_slashed"]) == (PER_EPOCH, CREDIT, DOWNTIME)


def test_network_incident_refunds_without_penalising_the_provider(clock, node, renter):
    rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=3, image=IMAGE)
    consensus(node, 10, uptime=500_000)
    totals = settle_rentals(10, penalise=False)
    assert (totals["refunds"], totals["sla_credits"], totals["collateral_slashed"]) == (PER_EPOCH, 0, 0)
    assert "network incident" in RentalCharge.objects.get().reason

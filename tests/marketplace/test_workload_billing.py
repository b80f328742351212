"""Settlement of a rental whose workload the checkers probed: an epoch in
which the renter's container was not running or its endpoints did not
answer (consensus workload share below the SLA uptime target) is a failed
epoch for that rental, refunded; once the workload had answered on the node,
also with an SLA credit and a failover as any other failure; unless the
renter's own container ended the rental, which is not the node's failure
and is never refunded twice. Nodes without a workload
verdict are judged exactly as before."""

from apps.accounts.services import open_wallet
from apps.core.verify import verify_ledger
from apps.marketplace import rentals, workload_spec, workloads
from apps.marketplace.models import (
    ChargeOutcome,
    CollateralSlash,
    RentalCharge,
    RentalMode,
    RentalStatus,
    SlashKind,
)
from apps.marketplace.services import settle_rentals
from apps.monitoring.models import NodeEpoch

from ..factories import make_node
from .conftest import consensus, online

PER_EPOCH = 33_333  # 2 ATH/GPU-hour, 1 GPU, 60 s epochs
CREDIT = 3_333


def rent(renter, node, epochs_=3, **options):
    spec = workload_spec.build(image="localhost/web:1", ports="8080")
    return rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=epochs_, workload=spec, **options)


def verdict(node, epoch, workload_ppm, **values):
    ne = consensus(node, epoch, **values)
    NodeEpoch.objects.filter(pk=ne.pk).update(workload_ppm=workload_ppm)
    return ne


def test_an_epoch_whose_workload_stopped_answering_is_refunded_with_a_credit(clock, node, renter):
    rental = rent(renter, node)
    verdict(node, 10, 1_000_000)  # it ran and answered here
    settle_rentals(10)
    before = open_wallet(renter).available
    verdict(node, 11, 500_000)  # the node itself was up, its renter's endpoints answered half the probes
    totals = settle_rentals(11)
    assert (totals["refunds"], totals["sla_credits"], totals["rental_fees"]) == (PER_EPOCH, CREDIT, 0)
    charge = RentalCharge.objects.get(rental=rental, epoch=11)
    assert charge.outcome == ChargeOutcome.FAILED and charge.sla_credit == CREDIT
    assert "the workload did not answer: running and reachable in 50% of probes, SLA target 99%" in charge.reason
    assert open_wallet(renter).available == before + PER_EPOCH + CREDIT
    assert CollateralSlash.objects.filter(kind=SlashKind.SLA_CREDIT, rental=rental).exists()
    rental.refresh_from_db()
    assert rental.last_failure_epoch == 11  # the renter may now move (or is moved, if opted in)
    assert verify_ledger().ok


def test_a_workload_that_never_answered_is_refunded_but_costs_the_provider_nothing(clock, node, renter):
    # A container that listens on none of the ports it declared looks, from
    # outside, exactly like a node whose networking is broken: the renter
    # does not pay for the epoch, and the provider is not penalised for it.
    rental = rent(renter, node, auto_replace=True)
    spare, _ = make_node(name="spare", price_ath="2")
    online(spare)
    collateral = node.collateral
    before = open_wallet(renter).available
    verdict(node, 10, 0)
    totals = settle_rentals(10)
    assert (totals["refunds"], totals["sla_credits"], totals["collateral_slashed"]) == (PER_EPOCH, 0, 0)
    charge = RentalCharge.objects.get(rental=rental, epoch=10)
    assert charge.outcome == ChargeOutcome.FAILED and "never answered on this node" in charge.reason
    assert open_wallet(renter).available == before + PER_EPOCH
    node.refresh_from_db()
    assert (node.collateral, node.paused) == (collateral, False)
    rental.refresh_from_db()
    assert rental.status == RentalStatus.ACTIVE and totals["replacements"] == 0  # not moved: it would fail alike
    assert verify_ledger().ok


def test_a_workload_that_answered_is_served_and_says_so(clock, node, renter):
    rental = rent(renter, node)
    verdict(node, 10, 995_000)
    settle_rentals(10)
    charge = RentalCharge.objects.get(rental=rental)
    assert charge.outcome == ChargeOutcome.SERVED and charge.sla_credit == 0
    assert charge.reason == "uptime 100%, latency 20 ms, workload answered in 99.5% of probes"


def test_without_a_workload_verdict_a_rental_and_an_unrented_node_are_judged_as_before(clock, node, renter):
    idle, _ = make_node(name="idle-h100", price_ath="2")
    online(idle)
    rental = rent(renter, node)
    consensus(node, 10)  # no workload share: too few reports checked it, or they predate the check
    verdict(idle, 10, None)
    collateral = idle.collateral
    settle_rentals(10)
    charge = RentalCharge.objects.get(rental=rental)
    assert (charge.outcome, charge.reason) == (ChargeOutcome.SERVED, "uptime 100%, latency 20 ms")
    idle.refresh_from_db()
    assert not RentalCharge.objects.filter(node=idle).exists()
    assert (idle.collateral, idle.paused) == (collateral, False)


def test_a_node_failure_is_reported_as_such_even_when_the_workload_failed_too(clock, node, renter):
    rent(renter, node)
    verdict(node, 10, 0, uptime=900_000)
    settle_rentals(10)
    assert "uptime 90% below the SLA target 99%" in RentalCharge.objects.get().reason


def test_a_container_that_exited_by_itself_is_not_the_nodes_failure_nor_refunded_twice(clock, node, renter):
    rental = rent(renter, node)
    wallet = open_wallet(renter)
    start = wallet.available
    workloads.record_status(node, {"lease": rental.pk, "state": "running", "endpoints": {"8080": "192.0.2.1:30001"}})
    workloads.record_status(node, {"lease": rental.pk, "state": "exited", "exit_code": 1})
    rental.refresh_from_db()
    assert rental.status == RentalStatus.ENDED and rental.end_epoch == 11
    refunded_at_exit = 2 * PER_EPOCH  # epochs 11 and 12, at once
    wallet.refresh_from_db()
    assert wallet.available == start + refunded_at_exit
    verdict(node, 10, 0)  # after the exit its endpoint answered no probe
    totals = settle_rentals(10)
    assert (totals["refunds"], totals["sla_credits"], totals["collateral_slashed"]) == (0, 0, 0)
    charge = RentalCharge.objects.get(rental=rental)
    assert charge.outcome == ChargeOutcome.SERVED
    assert "your container exited by itself (code 1): not the node's failure" in charge.reason
    rental.refresh_from_db()
    wallet.refresh_from_db()
    assert rental.escrow_left == 0 and rental.released == PER_EPOCH and rental.refunded == refunded_at_exit
    assert wallet.available == start + refunded_at_exit and wallet.escrowed == 0
    assert not CollateralSlash.objects.exists()
    assert verify_ledger().ok


def test_an_exit_in_a_later_epoch_does_not_excuse_an_earlier_failure(clock, node, renter):
    rental = rent(renter, node)
    verdict(node, 10, 1_000_000)  # epoch 10: it ran and answered
    settle_rentals(10)
    verdict(node, 11, 0)  # epoch 11: the workload did not answer
    clock.epoch = 12
    workloads.record_status(node, {"lease": rental.pk, "state": "exited", "exit_code": 0})  # in epoch 12
    settle_rentals(11)
    charge = RentalCharge.objects.get(rental=rental, epoch=11)
    assert charge.outcome == ChargeOutcome.FAILED and charge.sla_credit == CREDIT


def test_in_a_network_incident_a_failed_workload_is_refunded_without_a_credit(clock, node, renter):
    rent(renter, node)
    verdict(node, 10, 0)
    totals = settle_rentals(10, penalise=False)
    assert (totals["refunds"], totals["sla_credits"], totals["collateral_slashed"]) == (PER_EPOCH, 0, 0)
    assert "workload did not answer" in RentalCharge.objects.get().reason


def test_a_failed_workload_fails_over_to_a_replacement_that_runs_it(clock, node, renter):
    spare, _ = make_node(name="spare-h100", price_ath="2")
    online(spare)
    rental = rent(renter, node, epochs_=5, auto_replace=True)
    verdict(node, 10, 1_000_000)  # it ran and answered here
    settle_rentals(10)
    verdict(node, 11, 0)
    clock.epoch = 12
    assert settle_rentals(11)["replacements"] == 1
    rental.refresh_from_db()
    new = rental.replaced_by
    assert rental.status == RentalStatus.REPLACED and new.node_id == spare.pk
    assert new.workload.ports == [8080]
    assert verify_ledger().ok

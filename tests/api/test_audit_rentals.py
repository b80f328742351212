"""Rental escrow, recomputed from the public API alone: each rental's escrow
(funding, top-ups, charges, an early end's refund, the remainder its last
epoch returns) replayed from its postings and charges, and each served
charge taken from its own renter's escrow; a forged amount is found."""

import pytest
from django.db import transaction

from apps.accounts.services import open_wallet
from apps.core.models import GpuNode, LedgerTransaction, TxKind
from apps.marketplace import rentals
from apps.marketplace.models import Rental, RentalMode, RentalStatus

from ..factories import UserFactory, fund
from .public_network import FIRST, build
from .test_audit_script import forge, run_audit


def escrow_return() -> LedgerTransaction:
    """The on-demand rental's last epoch: 7 uATH of escrow back to its renter."""
    return next(
        t
        for t in LedgerTransaction.objects.filter(kind=TxKind.RENTAL_REFUND).order_by("height")
        if "node" not in t.meta and "epoch" in t.meta
    )


@pytest.mark.django_db(transaction=True)
def test_the_escrow_a_finished_rental_returns_is_recomputed(live_server):
    net = build()
    tx = escrow_return()
    assert [e.amount for e in tx.entries.order_by("amount")] == [-7, 7]
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 0, done.stdout + done.stderr
    for what, n in (("escrow remainder", 1), ("escrow return", 1), ("rental escrow total", 2)):
        assert f"checked {n:>8}  {what}\n" in done.stdout, (what, done.stdout)

    # One uATH less returned (it stays in escrow): the chain still verifies.
    renter = open_wallet(net["renter"]).address
    forge(tx.height, {(renter, "escrowed"): 1, (renter, "available"): -1})
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 1, done.stdout
    assert "ledger #" not in done.stdout, done.stdout
    assert f"posting #{tx.height}: escrow remainder is 6, recomputed 7" in done.stdout, done.stdout


@pytest.mark.django_db(transaction=True)
def test_an_early_end_refund_after_a_top_up_is_recomputed(live_server):
    net = build()
    renter = UserFactory(username="login-renter2", email="renter2@example.org")

    fund(open_wallet(renter), 10**12)
    node = net["nodes"][2]
    node.refresh_from_db()
    per_epoch = rentals.quote(renter, node, mode=RentalMode.ON_DEMAND, escrow=10**9).price_per_epoch
    rental = rentals.rent(renter, node.pk, mode=RentalMode.ON_DEMAND, escrow=5 * per_epoch + 3, image="ollama/ollama")
    rentals.top_up(renter, rental.pk, per_epoch + 2)
    refund = rentals.end_rental(renter, rental.pk)
    rental = Rental.objects.get(pk=rental.pk)
    # The current epoch stays in escrow for settlement; the rest comes back.
    assert refund == 6 * per_epoch + 5 - (rental.end_epoch - rental.start_epoch) * per_epoch > 0
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "checked        1  early-end refund\n" in done.stdout, done.stdout

    tx = LedgerTransaction.objects.get(kind=TxKind.RENTAL_REFUND, meta__rental=rental.pk)
    address = open_wallet(renter).address
    forge(tx.height, {(address, "escrowed"): -1, (address, "available"): 1})
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 1, done.stdout
    assert "ledger #" not in done.stdout, done.stdout
    assert f"rental {rental.pk} posting #{tx.height}: early-end refund is {refund + 1}" in done.stdout, done.stdout


@pytest.mark.django_db(transaction=True)
def test_a_served_charge_is_taken_from_its_own_renters_escrow(live_server):
    net = build()
    # The served rental handed to someone else: its charges now name another
    # renter, whose escrow the settle postings never touched.
    other = UserFactory(username="login-other", email="other@example.org")
    open_wallet(other)
    served = Rental.objects.get(mode=RentalMode.ON_DEMAND)
    Rental.objects.filter(pk=served.pk).update(renter=other)
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 1, done.stdout
    assert "rental settle posting is" in done.stdout, done.stdout


@pytest.mark.django_db(transaction=True)
def test_a_move_to_a_cheaper_node_is_recomputed(live_server):
    net = build()
    renter = UserFactory(username="login-renter3", email="renter3@example.org")
    fund(open_wallet(renter), 10**12)
    dear, cheap = net["nodes"][2], net["nodes"][0]
    GpuNode.objects.filter(pk=cheap.pk).update(price_per_gpu_hour=1_000)
    rental = rentals.rent(renter, dear.pk, mode=RentalMode.RESERVED, epochs_=4, image="ollama/ollama")
    now = rentals.current_epoch()
    with transaction.atomic():
        old = Rental.objects.select_for_update().get(pk=rental.pk)
        new = rentals.move_to(old, cheap.pk, old_end=now + 1, start=now + 1, reason="test")
    old = Rental.objects.get(pk=rental.pk)
    assert old.status == RentalStatus.REPLACED and 0 < old.carried_out == new.escrow_total
    surplus = LedgerTransaction.objects.get(kind=TxKind.RENTAL_REFUND, meta__replacement=new.pk)
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 0, done.stdout + done.stderr
    for what in ("replacement surplus refund", "replacement hand-over"):
        assert f"checked        1  {what}\n" in done.stdout, (what, done.stdout)

    # One uATH more refunded than the move left over.
    address = open_wallet(renter).address
    forge(surplus.height, {(address, "escrowed"): -1, (address, "available"): 1})
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 1, done.stdout
    assert "ledger #" not in done.stdout, done.stdout
    assert f"#{surplus.height}: replacement surplus refund is" in done.stdout, done.stdout

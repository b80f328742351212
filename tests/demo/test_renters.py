"""The demo's simulated renters keep the marketplace busy through the
scheduler and the rental services, under the same rules as people."""

import random

from django.core.management import call_command
from django.db.models import Count

from apps.accounts.services import open_wallet
from apps.core.models import GpuNode, NodeStatus
from apps.demo import seed
from apps.demo.renters import Renters
from apps.marketplace.models import Rental, Workload


def test_renters_rent_towards_the_target_share_and_end_some_early(genesis):
    seed.seed(nodes=40, n_checkers=4, n_delegators=8, history_epochs=2)
    market = Renters(random.Random(11))
    online = GpuNode.objects.filter(status=NodeStatus.ONLINE).count()
    assert online >= 30 and market.target() == online // 10
    for _ in range(30):
        market.step()
    active = market.active()  # the demo's own "renter" log-in has rentals of its own
    assert 1 <= active.count() <= market.target()
    # Never two active rentals on one node, never a node that is not online.
    assert not active.values("node").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert not active.exclude(node__status=NodeStatus.ONLINE).exists()
    # Each rental's escrow sits in its renter's escrowed bucket.
    held: dict = {}
    for rental in Rental.objects.exclude(renter__username="renter").select_related("renter"):
        assert rental.renter.username.startswith("renter-")
        held[rental.renter] = held.get(rental.renter, 0) + rental.escrow_left
    for renter, escrow_left in held.items():
        assert open_wallet(renter).escrowed == escrow_left
    # Some launch a template, whose ports the simulated nodes then give endpoints.
    workloads = list(Workload.objects.all())
    assert len(workloads) == Rental.objects.count() and any(w.template and w.ports for w in workloads)

    before = active.count()
    refund = market.end_one()
    assert refund is not None and refund > 0
    assert market.active().count() == before - 1
    assert Rental.objects.filter(end_reason__startswith="Job finished early").exists()
    call_command("verify_ledger")

"""The demo's simulator with compute challenges, end to end over HTTP: its
honest nodes really compute and pass; its lying nodes, which report the GPU
they declared, are caught by their challenges (one answers late, the other
with rows it never computed): in consensus their spec is false."""

import asyncio
from datetime import timedelta

import aiohttp
import pytest
from django.utils import timezone

from apps.core import epochs, ledger, parameters
from apps.core.models import ChainHead, NodeStatus
from apps.demo import simulated_network as network
from apps.demo.simulator import Simulator
from apps.monitoring import assignment, consensus
from apps.monitoring.models import ChallengeResult, CheckerReport, NodeEpoch

from ..factories import make_checker, make_node

EPOCH = 10  # seconds, the shortest the protocol allows


@pytest.mark.django_db(transaction=True)
def test_the_demos_lying_nodes_fail_their_challenges_and_honest_ones_pass(live_server):
    parameters.ensure_defaults()
    ledger.genesis()
    parameters.apply({"epoch_seconds": EPOCH}, effective_epoch=0, source="test", by_governance=False)
    nodes = [make_node()[0] for _ in range(4)]
    [make_checker() for _ in range(3)]
    # Epoch 5 begins in a few seconds: the agents are running by then (an
    # agent that starts after its epoch's first probes sits that epoch out).
    ChainHead.objects.filter(pk=1).update(genesis_at=timezone.now() - timedelta(seconds=EPOCH * 5 - 4))
    epoch = epochs.epoch(5)
    assignment.fix_round(epoch.number)

    sim_nodes = network.adopt_nodes()
    sim_checkers = network.adopt_checkers()
    liars = {next(n.pk for n in nodes if n.pk % 2 == parity) for parity in (0, 1)}
    for n in sim_nodes:
        n.faults.lie = n.node_id in liars

    async def run():
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            sim = Simulator(
                live_server.url,
                sim_nodes,
                sim_checkers,
                sample_every=1,
                post_every=2,
                probe_every=2,
                on_endpoints=network.set_endpoints,
            )
            await sim.start(session)
            asyncio.get_running_loop().call_later((epoch.end - timezone.now()).total_seconds() + 4.0, stop.set)
            await sim.run(stop)

    asyncio.run(run())
    assert consensus.finalize(epoch.number) is not None
    assert ChallengeResult.objects.filter(epoch=epoch.number).count() == 4 * 3
    for node in nodes:
        node.refresh_from_db()
        ne = NodeEpoch.objects.get(epoch=epoch.number, node=node)
        results = ChallengeResult.objects.filter(node=node)
        if node.pk in liars:
            assert (ne.challenge_ok, ne.spec_ok, node.status) == (False, False, NodeStatus.SUSPENDED)
            reasons = " ".join(results.values_list("reason", flat=True))
            assert ("deadline" if node.pk % 2 else "where the product has") in reasons
        else:
            assert (ne.challenge_ok, ne.spec_ok, node.status) == (True, True, NodeStatus.ONLINE)
            assert set(results.values_list("verified", flat=True)) == {True}
    assert CheckerReport.objects.filter(epoch=epoch.number, correct=False).count() == 0

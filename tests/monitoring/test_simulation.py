"""End to end inside one test: the simulator's real agents (HTTP to a live
server, TCP probes between them) with a node taken down; the fault shows up
in the epoch's consensus and in the node's status."""

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
from apps.monitoring.models import CheckerReport, Heartbeat, NodeEpoch

from ..factories import make_checker, make_node

EPOCH = 10  # seconds, the shortest the protocol allows


@pytest.mark.django_db(transaction=True)
def test_a_node_down_in_the_simulator_is_caught_by_consensus(live_server):
    parameters.ensure_defaults()
    ledger.genesis()
    parameters.apply({"epoch_seconds": EPOCH}, effective_epoch=0, source="test", by_governance=False)
    nodes = [make_node()[0] for _ in range(4)]
    [make_checker() for _ in range(3)]
    # Start a fresh epoch now, so one whole epoch runs inside the test.
    ChainHead.objects.filter(pk=1).update(genesis_at=timezone.now() - timedelta(seconds=EPOCH * 5))
    epoch = epochs.current()
    assert epoch.number == 5
    assignment.fix_round(5)  # as the scheduler does when the epoch starts

    sim_nodes = network.adopt_nodes()
    sim_checkers = network.adopt_checkers()
    down = next(n for n in sim_nodes if n.node_id == nodes[0].pk)
    down.faults.down = True

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
            # A little past the end: a report that missed the last round goes out
            # at the start of the next one (the epoch is not settled yet).
            asyncio.get_running_loop().call_later((epoch.end - timezone.now()).total_seconds() + 4.0, stop.set)
            await sim.run(stop)
            return sim.stats()

    stats = asyncio.run(run())
    assert stats["reports_sent"] == 4 * 3, stats
    assert Heartbeat.objects.filter(node=nodes[1]).exists()
    assert not Heartbeat.objects.filter(node=nodes[0]).exists()

    assert consensus.finalize(5) is not None
    broken = NodeEpoch.objects.get(epoch=5, node=nodes[0])
    assert broken.valid and broken.uptime_ppm == 0 and broken.latency_ms is None
    nodes[0].refresh_from_db()
    assert nodes[0].status == NodeStatus.DEGRADED and nodes[0].epochs_below_cutoff == 1
    for healthy in nodes[1:]:
        healthy.refresh_from_db()
        ne = NodeEpoch.objects.get(epoch=5, node=healthy)
        assert ne.valid and ne.uptime_ppm == 1_000_000 and ne.spec_ok
        assert healthy.status == NodeStatus.ONLINE and healthy.health_score >= 900_000
    assert CheckerReport.objects.filter(epoch=5, correct=False).count() == 0

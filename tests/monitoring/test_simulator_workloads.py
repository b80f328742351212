"""Workloads in the demo's simulated network, against a live server: a
rented simulated node reports its lease running, plainly simulated, with
every declared port at its own listener (so a checker's TCP probe finds it
answering), and removed once the rental ends; a real agent without a
container engine reports the lease failed, and the rental page says why.
The nodes' endpoints file takes the endpoints of several processes."""

import asyncio
import time

import aiohttp
import pytest
from django.test import Client

from apps.core import ledger, parameters
from apps.core.models import GpuNode, NodeStatus
from apps.demo import simulated_network as network
from apps.demo.simulator import SIMULATED, OwnedEndpoints, Simulator
from apps.marketplace import rentals, workload_spec
from apps.marketplace.models import RentalMode, Workload, WorkloadEvent
from apps.monitoring.agents.provider import NO_ENGINE, ProviderAgent

from ..factories import PASSWORD, UserFactory, fund, make_node


def rented_node(ports="8888, 8080"):
    node, token = make_node()
    GpuNode.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)
    renter = UserFactory()
    fund(renter.wallet, 1_000_000_000)
    spec = workload_spec.build(image="vllm/vllm-openai:latest", ports=ports)
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=30, workload=spec)
    return node, token, renter, rental


def wait_for(check, timeout: float = 15.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.1)
    return found


def page(renter, rental) -> str:
    client = Client()
    assert client.login(username=renter.username, password=PASSWORD)
    return client.get(f"/marketplace/rentals/{rental.pk}/").content.decode()


@pytest.fixture
def network_ready(transactional_db):
    parameters.ensure_defaults()
    ledger.genesis()


@pytest.mark.django_db(transaction=True)
def test_a_rented_simulated_node_reports_its_workload_running_plainly_simulated(network_ready, live_server):
    node, _, renter, rental = rented_node()
    idle, _ = make_node()  # not rented: its agent never reads leases
    sim_nodes = network.adopt_nodes()

    async def run():
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            sim = Simulator(
                live_server.url,
                sim_nodes,
                [],
                sample_every=1,
                post_every=2,
                on_endpoints=network.set_endpoints,
                find_leases=network.active_leases,
                leases_every=0.2,
            )
            await sim.start(session)
            task = asyncio.create_task(sim.run(stop))
            try:
                agent = sim.providers[node.pk]
                running = await asyncio.to_thread(
                    wait_for,
                    lambda: Workload.objects.filter(rental=rental, state="running").first(),
                    what="running",
                )
                address = f"127.0.0.1:{agent.port}"
                # What a checker does with a workload endpoint: a TCP connection.
                _, writer = await asyncio.open_connection("127.0.0.1", agent.port)
                writer.close()
                async with session.get(f"http://{address}/") as r:
                    shown = await r.text()
                await asyncio.to_thread(rentals.end_rental, renter, rental.pk)
                await asyncio.to_thread(
                    wait_for, lambda: Workload.objects.get(rental=rental).state == "removed", what="removed"
                )
                return running, address, shown, sim.providers[idle.pk].leases_read_at, agent.leases_running
            finally:
                stop.set()
                await task

    running, address, shown, idle_read_at, still_running = asyncio.run(run())
    assert running.reason == SIMULATED
    assert running.endpoints == {"8080": address, "8888": address}
    assert Workload.objects.get(rental=rental).endpoints == {}  # removed: nothing to open any more
    assert "This node of the demo network is simulated" in shown
    assert list(WorkloadEvent.objects.filter(rental=rental).values_list("state", flat=True)) == [
        "scheduled",
        "running",
        "removed",
    ]
    assert idle_read_at == 0.0 and still_running == {}


@pytest.mark.django_db(transaction=True)
def test_the_rental_page_says_plainly_that_a_workload_is_simulated(network_ready):
    node, _, renter, rental = rented_node()
    from apps.marketplace import workloads

    workloads.record_status(
        node, {"lease": rental.pk, "state": "running", "reason": SIMULATED, "endpoints": {"8080": "127.0.0.1:9"}}
    )
    html = page(renter, rental)
    assert 'data-testid="workload-simulated"' in html and "no container runs on it" in html
    assert SIMULATED in html


@pytest.mark.django_db(transaction=True)
def test_a_real_agent_without_an_engine_fails_its_lease_and_the_page_says_why(network_ready, live_server):
    node, token, renter, rental = rented_node(ports="8080")

    async def run():
        agent = ProviderAgent(api_url=live_server.url, token=token, sample_every=1, allow_nvml=False)
        agent.reconcile_every = 0.2
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        try:
            await asyncio.to_thread(
                wait_for, lambda: Workload.objects.get(rental=rental).state == "failed", what="failed"
            )
        finally:
            stop.set()
            await task
            await agent.close()

    asyncio.run(run())
    assert Workload.objects.get(rental=rental).reason == NO_ENGINE
    html = page(renter, rental)
    assert "The node could not run your container: this node has no container engine" in html


def test_the_nodes_endpoints_file_keeps_every_writers_nodes(tmp_path):
    path = tmp_path / "endpoints.json"
    simulated, on_this_machine, checkers = OwnedEndpoints(path), OwnedEndpoints(path), OwnedEndpoints(path)
    simulated.add({1: "http://127.0.0.1:40001/health"})
    on_this_machine.add({2: "http://127.0.0.1:40002/health"})
    simulated.add({3: "http://127.0.0.1:40003/health"})  # a node adopted later: the others' stay
    for node, port in ((1, 40001), (2, 40002), (3, 40003)):
        checkers._checked_at = 0
        assert checkers.refusal(node, f"http://127.0.0.1:{port}/health") is None

"""The simulator runs on the dashboard's own machine: its checkers probe
the nodes it runs itself and nothing else. A node whose provider declared
an endpoint (through the web or the API) is never fetched from there, even
on loopback, and is reported as not answering, with that reason."""

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from django.core.management import CommandError, call_command

from apps.demo.simulator import OwnedEndpoints, SimChecker, SimNode, Simulator

from .fake_dashboard import fake_dashboard
from .hostile_nodes import counting_server

OURS, DECLARED = 1, 2


@pytest.mark.asyncio
async def test_the_simulators_checkers_never_fetch_a_declared_endpoint():
    start = datetime.now(UTC) - timedelta(seconds=30)
    end = datetime.now(UTC) + timedelta(seconds=1)
    sent = []
    sim = None

    async def me(request):
        return web.json_response(
            {"node": {"id": OURS, "name": "sim", "gpu_model": "NVIDIA H100 80GB", "gpu_count": 1, "vram_gb": 80}}
        )

    async with counting_server() as (declared, hits):

        async def assignments(request):
            nodes = {OURS: sim.providers[OURS].endpoint, DECLARED: declared}
            return web.json_response(
                {
                    "epoch": 5,
                    "epoch_start": start.isoformat(),
                    "epoch_end": end.isoformat(),
                    "assignments": [
                        {"node": n, "endpoint": e, "gpu_model": "NVIDIA H100 80GB", "gpu_count": 1}
                        for n, e in nodes.items()
                    ],
                }
            )

        async def reports(request):
            body = await request.json()
            sent.extend(body["reports"])
            return web.json_response({"results": [{"status": 201} for _ in body["reports"]]})

        routes = {
            ("GET", "/api/agent/me/"): me,
            ("GET", "/api/agent/assignments/"): assignments,
            ("POST", "/api/agent/reports/batch/"): reports,
        }
        async with fake_dashboard(routes) as url, aiohttp.ClientSession() as session:
            sim = Simulator(url, [SimNode(OURS, "agt_node")], [SimChecker(10, "agt_checker")])
            await sim.start(session)
            checker = sim.checker_agents[0]
            checker.joined_at = start.timestamp() - 60
            try:
                await checker.cycle(asyncio.Semaphore(4))
            finally:
                await sim.providers[OURS].close()
                await checker.close()

    assert not hits, "the simulator fetched an endpoint a provider declared"
    by_node = {r["node"]: r for r in sent}
    assert by_node[OURS]["task_ppm"] == 1_000_000
    assert by_node[DECLARED]["uptime_ppm"] == by_node[DECLARED]["task_ppm"] == 0
    assert "not a node the simulator runs" in by_node[DECLARED]["reason"]


def test_the_checkers_process_learns_the_nodes_process_endpoints_from_its_file(tmp_path):
    path = tmp_path / "endpoints.json"
    nodes, checkers = OwnedEndpoints(path), OwnedEndpoints(path)
    assert checkers.refusal(OURS, "http://127.0.0.1:40001/health")  # nothing written yet
    nodes.add({OURS: "http://127.0.0.1:40001/health"})
    checkers._checked_at = 0  # it reads the file at most twice a second
    assert checkers.refusal(OURS, "http://127.0.0.1:40001/health") is None
    # Same node, another endpoint (its provider changed it): not ours.
    assert checkers.refusal(OURS, "http://127.0.0.1:8000/admin/")


def test_the_checkers_process_starting_after_the_nodes_keeps_their_endpoints(tmp_path):
    # The checkers' simulator runs no node agents; it starts once the nodes'
    # process has written the file, and must not overwrite it with nothing.
    path = tmp_path / "endpoints.json"
    nodes, checkers = OwnedEndpoints(path), OwnedEndpoints(path)
    nodes.add({OURS: "http://127.0.0.1:40001/health"})
    checkers.add({})
    assert checkers.refusal(OURS, "http://127.0.0.1:40001/health") is None


def test_the_simulators_checkers_need_to_know_which_nodes_are_theirs():
    with pytest.raises(CommandError, match="--owned-endpoints"):
        call_command("simulate_network", "--role", "checkers")

"""The demo's simulated nodes send a speed test's download no faster than
their link: a steady share of the bandwidth their provider declared (which
the identify answer tells their agent), and a ``slow_ms`` node slower still,
so the figures checkers measure look like a network's."""

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from apps.demo.simulator import LINK_SHARE, Faults, SimChecker, SimNode, Simulator

from .fake_dashboard import fake_dashboard

NODE, DECLARED_MBPS, KIB = 1, 20, 128


async def measured(faults: Faults) -> tuple[float, dict]:
    """One checker's epoch against one simulated node declaring
    DECLARED_MBPS: the node's link speed and the checker's report."""
    start = datetime.now(UTC) - timedelta(seconds=30)
    # Report time, with more than half the margin left: time for the speed tests.
    end = datetime.now(UTC) + timedelta(seconds=12)
    sent = []
    sim = None

    async def me(request):
        node = {"id": NODE, "name": "sim", "gpu_model": "NVIDIA H100 80GB", "gpu_count": 1, "vram_gb": 80}
        return web.json_response({"node": {**node, "bandwidth_mbps": DECLARED_MBPS}})

    async def assignments(request):
        return web.json_response(
            {
                "epoch": 5,
                "epoch_start": start.isoformat(),
                "epoch_end": end.isoformat(),
                "speed_test_kib": KIB,
                "assignments": [
                    {
                        "node": NODE,
                        "endpoint": sim.providers[NODE].endpoint,
                        "gpu_model": "NVIDIA H100 80GB",
                        "gpu_count": 1,
                    }
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
        sim = Simulator(url, [SimNode(NODE, "agt_node", faults)], [SimChecker(10, "agt_checker")])
        await sim.start(session)
        checker = sim.checker_agents[0]
        checker.timeout = 5  # a slow node's health answer still counts
        checker.joined_at = start.timestamp() - 60
        try:
            await checker.cycle(asyncio.Semaphore(4))
        finally:
            await sim.providers[NODE].close()
            await checker.close()
    [report] = sent
    return sim.providers[NODE].link_mbps, report


@pytest.mark.asyncio
async def test_a_simulated_node_is_measured_at_about_its_link_speed():
    link, report = await measured(Faults())
    assert DECLARED_MBPS * LINK_SHARE[0] <= link <= DECLARED_MBPS * LINK_SHARE[1]
    # Never faster than the link; slower only by what a busy test machine adds.
    assert link * 0.5 <= report["download_mbps"] <= link * 1.05, (link, report["download_mbps"])


@pytest.mark.asyncio
async def test_a_slow_simulated_node_is_measured_slower():
    link, report = await measured(Faults(slow_ms=400))
    # 128 KiB over at least 400 ms more than the link takes: under 2.7 Mbps.
    assert report["download_mbps"] is not None and report["download_mbps"] < 2.7, (link, report)

"""What a checker reports as a node's latency on a busy host: the node's
round trip, not the checker's own delays. Honest checkers on a loaded
machine disagreed (and were jailed for it) when their reports carried the
time spent opening a connection or a stall of their own host that hit the
re-timing too. The real agent against a real node on a loopback socket."""

import asyncio

import aiohttp
import pytest
from aiohttp import web

from apps.monitoring.agents.addresses import AddressPolicy
from apps.monitoring.agents.checker import CONFIRM_SLOW_MS, RETIMES, CheckerAgent

from .hostile_nodes import HONEST, _serve

STALL_S = 0.3  # far above CONFIRM_SLOW_MS and any scheduling noise of the test host


async def latency_of(endpoint: str) -> int:
    """The latency one probe of ``endpoint`` puts in the agent's report."""
    agent = CheckerAgent(api_url="http://127.0.0.1:9", token="agt_x", timeout=2, policy=AddressPolicy.loopback_only())
    a = {"node": 1, "endpoint": endpoint, "gpu_model": HONEST["gpu_name"], "gpu_count": HONEST["gpu_count"]}
    try:
        await agent.probe(5, a, asyncio.Semaphore(1))
    finally:
        await agent.close()
    report = agent.measured(5, 1)
    assert report["task_ppm"] == 1_000_000, "the node answered"
    return report["latency_ms"]


@pytest.mark.asyncio
async def test_stalls_that_hit_the_first_tries_do_not_decide_the_latency():
    # The first answers come late (a stall on the way, twice in a row), the
    # last one promptly: the node is fast, and the report says so.
    hits = []

    async def handler(request):
        hits.append(1)
        if len(hits) <= RETIMES:
            await asyncio.sleep(STALL_S)
        return web.json_response(HONEST)

    async with _serve(handler) as endpoint:
        latency = await latency_of(endpoint)
    assert len(hits) == RETIMES + 1
    assert latency <= CONFIRM_SLOW_MS


@pytest.mark.asyncio
async def test_opening_the_connection_is_not_the_nodes_latency(monkeypatch):
    # The checker's host takes its time to open a connection (a busy event
    # loop, a full connection pool): the node itself answers at once.
    original = aiohttp.TCPConnector._create_connection

    async def slow_to_connect(self, *args, **kwargs):
        await asyncio.sleep(STALL_S)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(aiohttp.TCPConnector, "_create_connection", slow_to_connect)

    async def handler(request):
        return web.json_response(HONEST)

    async with _serve(handler) as endpoint:
        latency = await latency_of(endpoint)
    assert latency <= CONFIRM_SLOW_MS

"""A connect that timed out is tried once more before the node counts as
unreachable. On a starved host the checker's own event loop can stall past
the timeout, so the timer fires before the connection the kernel already
made is seen; that made honest checkers' uptime differ from their peers'
(soaks on one busy core jailed them for it). A node that is down fails both
tries; a refused connection is the node's own answer and is not tried
again, and a health request is asked once. The real agent against real
loopback sockets."""

import asyncio
import socket
import time

import pytest
from aiohttp import web

from apps.monitoring.agents import checker as checker_module
from apps.monitoring.agents.addresses import AddressPolicy
from apps.monitoring.agents.checker import CONFIRM_TIMEOUTS, PPM, CheckerAgent

from .hostile_nodes import HONEST, _serve

TIMEOUT = 0.5


async def probe_once(endpoint: str) -> tuple[dict, object]:
    """One probe of ``endpoint``: (the report it would make, its tally)."""
    agent = CheckerAgent(
        api_url="http://127.0.0.1:9", token="agt_x", timeout=TIMEOUT, policy=AddressPolicy.loopback_only()
    )
    a = {"node": 1, "endpoint": endpoint, "gpu_model": HONEST["gpu_name"], "gpu_count": HONEST["gpu_count"]}
    try:
        await agent.probe(5, a, asyncio.Semaphore(1))
    finally:
        await agent.close()
    return agent.measured(5, 1), agent.tallies[(5, 1)]


def stall_first_connects(monkeypatch, stalls: int) -> list:
    """The checker's first ``stalls`` connects wait past the timeout (its host
    stalled), the rest go through; returns the list of connect attempts."""
    attempts = []
    original = asyncio.open_connection

    async def open_connection(*args, **kwargs):
        attempts.append(time.monotonic())
        if len(attempts) <= stalls:
            await asyncio.sleep(TIMEOUT * 3)
        return await original(*args, **kwargs)

    monkeypatch.setattr(checker_module.asyncio, "open_connection", open_connection)
    return attempts


async def honest(request):
    return web.json_response(HONEST)


@pytest.mark.asyncio
async def test_a_connect_stalled_once_is_tried_again_and_the_node_counts_as_up(monkeypatch):
    attempts = stall_first_connects(monkeypatch, stalls=1)
    async with _serve(honest) as endpoint:
        report, tally = await probe_once(endpoint)
    assert len(attempts) == 2
    assert (report["uptime_ppm"], report["task_ppm"]) == (PPM, PPM)
    assert report["latency_ms"] is not None and not tally.failures


@pytest.mark.asyncio
async def test_a_node_whose_connects_time_out_every_time_is_down(monkeypatch):
    attempts = stall_first_connects(monkeypatch, stalls=99)
    async with _serve(honest) as endpoint:
        report, tally = await probe_once(endpoint)
    assert len(attempts) == 1 + CONFIRM_TIMEOUTS
    assert (report["uptime_ppm"], report["task_ppm"], report["latency_ms"]) == (0, 0, None)
    assert tally.failures == {"no connection": 1}


@pytest.mark.asyncio
async def test_a_refused_connection_is_not_tried_again(monkeypatch):
    attempts = stall_first_connects(monkeypatch, stalls=0)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    report, tally = await probe_once(f"http://127.0.0.1:{port}/health")
    assert len(attempts) == 1
    assert report["uptime_ppm"] == 0 and tally.failures == {"no connection": 1}


@pytest.mark.asyncio
async def test_a_hung_node_is_connected_but_unanswered_and_asked_only_once():
    # Asking again would hold every probe of a hung node (and the report
    # after the epoch's last probes) twice as long.
    calls = []

    async def handler(request):
        calls.append(1)
        await asyncio.sleep(TIMEOUT * 3)
        return web.json_response(HONEST)

    async with _serve(handler) as endpoint:
        report, tally = await probe_once(endpoint)
    assert len(calls) == 1
    assert (report["uptime_ppm"], report["task_ppm"], report["latency_ms"]) == (PPM, 0, None)
    assert tally.failures == {f"no complete answer within {TIMEOUT:g} s": 1}


@pytest.mark.asyncio
async def test_a_wrong_answer_is_not_asked_for_again():
    calls = []

    async def handler(request):
        calls.append(1)
        return web.json_response([])

    async with _serve(handler) as endpoint:
        report, _ = await probe_once(endpoint)
    assert len(calls) == 1
    assert (report["uptime_ppm"], report["task_ppm"]) == (PPM, 0)

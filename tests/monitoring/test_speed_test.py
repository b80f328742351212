"""The measured network speed between the real agents over real sockets:
the provider agent's ``/speed`` route sends exactly the bytes asked (within
its bounds, refusing anything else with a reason), and a checker times one
download per node and epoch into its signed report's ``download_mbps``, or
reports none when the test is off or the node sends less than it promised."""

import asyncio
import contextlib
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from apps.monitoring import signing
from apps.monitoring.agents.addresses import AddressPolicy
from apps.monitoring.agents.checker import MAX_MBPS, CheckerAgent, mbps
from apps.monitoring.agents.provider import SPEED_MAX_BYTES, SPEED_MIN_BYTES, ProviderAgent
from apps.monitoring.agents.telemetry import GpuFacts

from .fake_dashboard import fake_dashboard

EPOCH, NODE = 5, 7


class ShortBody(ProviderAgent):
    """Promises the bytes asked (its Content-Length) and sends half of them."""

    async def speed(self, request):
        n = int(request.query["bytes"])
        response = web.StreamResponse()
        response.content_length = n
        await response.prepare(request)
        await response.write(b"\0" * (n // 2))
        request.transport.close()
        return response


@contextlib.asynccontextmanager
async def node(agent_class=ProviderAgent):
    agent = agent_class(api_url="http://127.0.0.1:9", token="agt_node")
    agent.node_id = NODE
    agent.facts = GpuFacts("NVIDIA T4 16GB", 1, 16)
    await agent.serve()
    try:
        yield agent
    finally:
        await agent.close()


async def get(provider: ProviderAgent, query: str) -> tuple[int, bytes]:
    checker = CheckerAgent(api_url="http://127.0.0.1:9", token="agt_x", policy=AddressPolicy.loopback_only())
    try:
        session = await checker._nodes_session()
        url = provider.endpoint.replace("/health", "/speed") + query
        async with session.get(url, timeout=None) as r:
            return r.status, await r.read()
    finally:
        await checker.close()


@pytest.mark.asyncio
async def test_the_speed_route_sends_exactly_the_bytes_asked():
    async with node() as provider:
        for n in (SPEED_MIN_BYTES, 32 * 1024, 100_000, SPEED_MAX_BYTES):
            status, body = await get(provider, f"?bytes={n}")
            assert (status, len(body)) == (200, n)
        # Incompressible: no compression on the way makes a node look faster.
        _, body = await get(provider, "?bytes=100000")
        assert len(zlib.compress(body)) > 0.99 * len(body)


@pytest.mark.asyncio
async def test_the_speed_route_refuses_sizes_out_of_bounds_and_malformed_ones():
    queries = {
        "": "one size",
        f"?bytes={SPEED_MIN_BYTES - 1}": "from 1024 to",
        f"?bytes={SPEED_MAX_BYTES + 1}": "from 1024 to",
        "?bytes=0": "from 1024 to",
        "?bytes=abc": "decimal digits",
        "?bytes=-2048": "decimal digits",
        "?bytes=%2B2048": "decimal digits",
        "?bytes=2e3": "decimal digits",
        "?bytes=%202048": "decimal digits",
        "?bytes=%D9%A3%D9%A3%D9%A3%D9%A3": "decimal digits",  # Arabic-Indic digits
        "?bytes=99999999999999999999": "decimal digits",
        "?bytes=2048&bytes=4096": "one size",
        "?bytes=2048&extra=1": "one size",
    }
    async with node() as provider:
        for query, reason in queries.items():
            status, body = await get(provider, query)
            assert status == 400, query
            assert reason in body.decode(), (query, body)


async def one_epoch(provider: ProviderAgent, speed_test_kib) -> tuple[CheckerAgent, dict]:
    """A checker's whole epoch against ``provider`` (its report time has come, 12 s before the end):
    the report it sends, and the agent (for its key)."""
    start = datetime.now(UTC) - timedelta(seconds=30)
    # Report time, with more than half the margin left: time for the speed tests.
    end = datetime.now(UTC) + timedelta(seconds=12)
    batches = []

    async def assignments(request):
        answer = {
            "epoch": EPOCH,
            "epoch_start": start.isoformat(),
            "epoch_end": end.isoformat(),
            "assignments": [
                {"node": NODE, "endpoint": provider.endpoint, "gpu_model": "NVIDIA T4 16GB", "gpu_count": 1}
            ],
        }
        if speed_test_kib is not None:
            answer["speed_test_kib"] = speed_test_kib
        return web.json_response(answer)

    async def reports(request):
        batches.append(await request.json())
        return web.json_response({"results": [{"status": 201}]})

    routes = {("GET", "/api/agent/assignments/"): assignments, ("POST", "/api/agent/reports/batch/"): reports}
    async with fake_dashboard(routes) as url:
        agent = CheckerAgent(api_url=url, token="agt_x", probe_every=2, timeout=1, policy=AddressPolicy.loopback_only())
        agent.checker_id = 3
        agent.joined_at = start.timestamp() - 60
        try:
            await agent.cycle(asyncio.Semaphore(4))
        finally:
            await agent.close()
    [batch] = batches
    [report] = batch["reports"]
    return agent, report


@pytest.mark.asyncio
async def test_a_checker_reports_the_nodes_measured_speed_signed():
    async with node() as provider:
        agent, report = await one_epoch(provider, 256)
    assert report["task_ppm"] == 1_000_000
    assert type(report["download_mbps"]) is int and 0 < report["download_mbps"] <= MAX_MBPS
    key = signing.public_hex(agent.key)
    assert signing.verify(key, report, report["signature"])
    # The figure is signed: changed or dropped, the signature no longer holds.
    assert not signing.verify(key, {**report, "download_mbps": report["download_mbps"] + 1}, report["signature"])
    assert not signing.verify(key, {**report, "download_mbps": None}, report["signature"])


@pytest.mark.asyncio
@pytest.mark.parametrize("kib", [0, None, "2048", -1, 16_385, True])
async def test_no_speed_test_when_the_dashboard_asks_for_none(kib):
    async with node() as provider:
        agent, report = await one_epoch(provider, kib)
    assert report["task_ppm"] == 1_000_000
    assert report["download_mbps"] is None
    assert signing.verify(signing.public_hex(agent.key), report, report["signature"])


@pytest.mark.asyncio
async def test_a_node_that_sends_a_short_body_has_no_figure():
    async with node(ShortBody) as provider:
        agent, report = await one_epoch(provider, 64)
    assert report["task_ppm"] == 1_000_000  # it answers its probes: only the speed test fails
    assert report["download_mbps"] is None
    assert "speed test" in report["reason"]
    assert signing.verify(signing.public_hex(agent.key), report, report["signature"])


@pytest.mark.asyncio
async def test_a_node_that_never_finishes_its_download_has_no_figure():
    class Stalls(ProviderAgent):
        async def pace(self, upto, total, started):
            await asyncio.sleep(30)

    async with node(Stalls) as provider:
        agent, report = await one_epoch(provider, 1024)
    assert report["download_mbps"] is None
    assert "no complete answer" in report["reason"]


@pytest.mark.asyncio
async def test_a_node_that_sends_more_than_asked_is_read_no_further_and_has_no_figure():
    class Endless(ProviderAgent):
        async def speed(self, request):
            response = web.StreamResponse()  # chunked: no length announced
            await response.prepare(request)
            while True:
                await response.write(b"\0" * 65536)

    async with node(Endless) as provider:
        agent, report = await one_epoch(provider, 64)
    assert report["download_mbps"] is None
    assert "more than the 65536 bytes asked" in report["reason"]


def test_mbps_is_whole_and_bounded():
    assert mbps(1_250_000, 1.0) == 10
    assert mbps(1_250_000, 0.0) == MAX_MBPS  # too quick for the clock
    assert mbps(10**12, 0.001) == MAX_MBPS
    assert mbps(0, 1.0) == 0

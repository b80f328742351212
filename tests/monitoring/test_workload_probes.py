"""A checker probes a rented node's workload: the lease must be running and
each endpoint the node's agent reported must accept a TCP connection. The
real agent against real loopback listeners: an open endpoint passes, a
closed one fails, a lease that is not running fails without a connection,
a node listing thousands of endpoints costs at most the cap of connects,
and the share that passed is signed into the report."""

import asyncio
import socket
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from apps.monitoring import signing
from apps.monitoring.agents.addresses import LOOPBACK, AddressPolicy
from apps.monitoring.agents.checker import MAX_WORKLOAD_ENDPOINTS, CheckerAgent

from .fake_dashboard import fake_dashboard
from .hostile_nodes import HONEST

PPM = 1_000_000


@asynccontextmanager
async def listener():
    """A TCP listener on a free loopback port: ("127.0.0.1:port", connections accepted)."""
    accepted = []

    def on_connect(reader, writer):
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}", accepted
    finally:
        server.close()
        await server.wait_closed()


def closed_endpoint() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def lease(*endpoints, running=True, ports=None, starting=False) -> dict:
    return {
        "lease": 7,
        "running": running,
        "starting": starting,
        "ports": list(range(8000, 8000 + len(endpoints))) if ports is None else ports,
        "endpoints": list(endpoints),
    }


async def probe(workload, *, policy=None, times=1):
    """``times`` probes of a node (honest health endpoint) rented with
    ``workload``: (the report's measurements, the tally)."""

    async def health(request):
        return web.json_response(HONEST)

    async with fake_dashboard({("GET", "/health"): health}) as url:
        agent = CheckerAgent(
            api_url=url, token="agt_x", timeout=1, policy=policy or AddressPolicy(allow=LOOPBACK), key=signing.new_key()
        )
        a = {"node": 1, "endpoint": f"{url}/health", "gpu_model": HONEST["gpu_name"], "gpu_count": HONEST["gpu_count"]}
        if workload is not None:
            a["workload"] = workload
        try:
            for _ in range(times):
                await agent.probe(5, a, asyncio.Semaphore(1))
        finally:
            await agent.close()
    return agent.measured(5, 1), agent.tallies[(5, 1)]


@pytest.mark.asyncio
async def test_a_running_workload_whose_endpoints_accept_passes():
    async with listener() as (one, hits_one), listener() as (two, hits_two):
        report, _ = await probe(lease(one, two), times=2)
    assert report["workload_ppm"] == PPM
    assert report["uptime_ppm"] == report["task_ppm"] == PPM  # the node's own probe as before
    assert (len(hits_one), len(hits_two)) == (2, 2)


@pytest.mark.asyncio
async def test_a_closed_endpoint_fails_the_workload_and_says_which():
    async with listener() as (open_one, _):
        dead = closed_endpoint()
        report, tally = await probe(lease(open_one, dead))
    assert report["workload_ppm"] == 0
    assert report["uptime_ppm"] == PPM  # the node itself answered
    assert any(dead in why and "no connection" in why for why in tally.failures)


@pytest.mark.asyncio
async def test_a_lease_that_is_not_running_fails_without_a_connection():
    async with listener() as (endpoint, hits):
        report, tally = await probe(lease(endpoint, running=False))
    assert report["workload_ppm"] == 0 and hits == []
    assert "workload: the lease is not running" in tally.failures


@pytest.mark.asyncio
async def test_a_declared_port_without_an_endpoint_fails():
    async with listener() as (endpoint, _):
        report, tally = await probe(lease(endpoint, ports=[8080, 9090]))
    assert report["workload_ppm"] == 0
    assert any("1 of the lease's 2 ports have no endpoint" in why for why in tally.failures)


@pytest.mark.asyncio
async def test_a_running_lease_without_ports_passes_on_the_nodes_word():
    report, _ = await probe(lease(running=True))
    assert report["workload_ppm"] == PPM


@pytest.mark.asyncio
async def test_an_unrented_node_and_a_lease_still_starting_carry_no_workload_share():
    unrented, _ = await probe(None)
    starting, tally = await probe(lease(running=False, starting=True))
    assert unrented["workload_ppm"] is None and starting["workload_ppm"] is None
    assert tally.workload_probes == 0 and starting["uptime_ppm"] == PPM


@pytest.mark.asyncio
async def test_ten_thousand_endpoints_cost_at_most_the_cap_of_connects():
    """A hostile node lists 10,000 endpoints: the first MAX_WORKLOAD_ENDPOINTS
    are connected to (concurrently, one timeout for all), no more."""
    async with listener() as (endpoint, hits):
        started = time.monotonic()
        report, _ = await probe(lease(*[endpoint] * 10_000))
        took = time.monotonic() - started
    assert len(hits) == MAX_WORKLOAD_ENDPOINTS == 16
    assert report["workload_ppm"] == PPM  # the ones past the cap are not probed
    assert took < 3


@pytest.mark.asyncio
async def test_only_the_first_endpoints_up_to_the_cap_are_probed():
    async with listener() as (endpoint, hits):
        listed = [endpoint] * MAX_WORKLOAD_ENDPOINTS + [closed_endpoint()] * 5
        report, _ = await probe(lease(*listed))
    assert len(hits) == MAX_WORKLOAD_ENDPOINTS and report["workload_ppm"] == PPM


@pytest.mark.asyncio
async def test_workload_endpoints_go_through_the_address_policy():
    """An endpoint on the checker's own loopback is refused by the default
    policy and never connected to; a malformed one is refused too."""
    async with listener() as (endpoint, hits):
        report, tally = await probe(lease(endpoint), policy=AddressPolicy())
        malformed, bad = await probe(lease("not an endpoint"))
    assert report["workload_ppm"] == 0 and hits == []
    assert any("127.0.0.1 is loopback" in why for why in tally.failures)
    assert malformed["workload_ppm"] == 0
    assert any("not host:port" in why for why in bad.failures)


@pytest.mark.asyncio
async def test_a_filtered_node_has_its_workload_refused_too():
    async with listener() as (endpoint, hits):

        async def health(request):
            return web.json_response(HONEST)

        async with fake_dashboard({("GET", "/health"): health}) as url:
            agent = CheckerAgent(
                api_url=url,
                token="agt_x",
                timeout=1,
                policy=AddressPolicy(allow=LOOPBACK),
                target_filter=lambda node, endpoint: "not ours",
            )
            a = {"node": 1, "endpoint": f"{url}/health", "gpu_model": "x", "gpu_count": 1, "workload": lease(endpoint)}
            try:
                await agent.probe(5, a, asyncio.Semaphore(1))
            finally:
                await agent.close()
    assert agent.measured(5, 1)["workload_ppm"] == 0 and hits == []


@pytest.mark.asyncio
async def test_the_share_is_per_probe_and_signed_into_the_report():
    """Two probes up, then the endpoint closes for two: half. The report's
    signature covers the share: changed or dropped, it no longer verifies."""

    async def health(request):
        return web.json_response(HONEST)

    key = signing.new_key()
    async with fake_dashboard({("GET", "/health"): health}) as url:
        agent = CheckerAgent(api_url=url, token="agt_x", timeout=1, policy=AddressPolicy(allow=LOOPBACK), key=key)
        a = {"node": 1, "endpoint": f"{url}/health", "gpu_model": HONEST["gpu_name"], "gpu_count": 1}
        try:
            async with listener() as (endpoint, _):
                a["workload"] = lease(endpoint)
                for _ in range(2):
                    await agent.probe(5, a, asyncio.Semaphore(1))
            for _ in range(2):
                await agent.probe(5, a, asyncio.Semaphore(1))
        finally:
            await agent.close()
    report = agent.build_report(5, 1)
    assert report["workload_ppm"] == 500_000 and report["uptime_ppm"] == PPM
    public = signing.public_hex(key)
    assert signing.verify(public, report, report["signature"])
    assert not signing.verify(public, {**report, "workload_ppm": PPM}, report["signature"])
    assert not signing.verify(public, {k: v for k, v in report.items() if k != "workload_ppm"}, report["signature"])


@pytest.mark.asyncio
async def test_a_round_probes_the_workload_the_assignment_names_and_reports_it():
    """Through the agent's own round: the assignments answer names the lease,
    the report sent at the end of the epoch carries its share."""
    start = datetime.now(UTC) - timedelta(seconds=30)
    end = datetime.now(UTC) + timedelta(seconds=1)
    sent = []
    async with listener() as (endpoint, hits):

        async def health(request):
            return web.json_response(HONEST)

        async def assignments(request):
            node = {"endpoint": f"{url}/health", "gpu_model": HONEST["gpu_name"], "gpu_count": 1}
            return web.json_response(
                {
                    "epoch": 5,
                    "epoch_start": start.isoformat(),
                    "epoch_end": end.isoformat(),
                    "assignments": [{"node": 1, **node, "workload": lease(endpoint)}, {"node": 2, **node}],
                }
            )

        async def reports(request):
            sent.extend((await request.json())["reports"])
            return web.json_response({"results": [{"status": 201}, {"status": 201}]})

        routes = {
            ("GET", "/health"): health,
            ("GET", "/api/agent/assignments/"): assignments,
            ("POST", "/api/agent/reports/batch/"): reports,
        }
        async with fake_dashboard(routes) as url:
            agent = CheckerAgent(
                api_url=url, token="agt_x", probe_every=2, timeout=0.5, policy=AddressPolicy(allow=LOOPBACK)
            )
            agent.joined_at = start.timestamp() - 60
            try:
                await agent.cycle(asyncio.Semaphore(4))
            finally:
                await agent.close()
    by_node = {r["node"]: r for r in sent}
    assert by_node[1]["workload_ppm"] == PPM and hits
    assert by_node[2]["workload_ppm"] is None

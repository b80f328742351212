"""How a checker agent sends its reports: only for epochs it observed from
their start (a fresh or restarted agent sits its first, partial epoch out
rather than risk a report judged incorrect against checkers that saw all of
it), and in requests under the dashboard's limit per batch."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from apps.monitoring.agents.addresses import LOOPBACK, AddressPolicy
from apps.monitoring.agents.checker import RETIMES, CheckerAgent

from .fake_dashboard import fake_dashboard


async def run_to_report_time(joined_at_offset: float) -> list:
    """One epoch that started 30 s ago and ends in 1 s (report time); the
    agent joined ``joined_at_offset`` seconds after the epoch started."""
    start = datetime.now(UTC) - timedelta(seconds=30)
    end = datetime.now(UTC) + timedelta(seconds=1)
    batches = []

    async def assignments(request):
        return web.json_response(
            {
                "epoch": 5,
                "epoch_start": start.isoformat(),
                "epoch_end": end.isoformat(),
                "assignments": [{"node": 1, "endpoint": "http://127.0.0.1:9/health"}],
            }
        )

    async def reports(request):
        batches.append(await request.json())
        return web.json_response({"results": [{"status": 201}]})

    routes = {("GET", "/api/agent/assignments/"): assignments, ("POST", "/api/agent/reports/batch/"): reports}
    async with fake_dashboard(routes) as url:
        agent = CheckerAgent(api_url=url, token="agt_x", probe_every=2, timeout=0.2)
        agent.joined_at = start.timestamp() + joined_at_offset
        try:
            await agent.cycle(asyncio.Semaphore(4))
        finally:
            await agent.session.close()
    return batches


@pytest.mark.asyncio
async def test_an_agent_that_saw_the_whole_epoch_reports():
    batches = await run_to_report_time(joined_at_offset=-60)
    assert len(batches) == 1 and batches[0]["reports"][0]["node"] == 1


@pytest.mark.asyncio
async def test_a_busy_agent_that_managed_one_round_still_reports():
    """It ran all epoch (joined before it started) but its first round is
    also its last: a thinner picture, not a partial one."""
    batches = await run_to_report_time(joined_at_offset=-1)
    assert len(batches) == 1


@pytest.mark.asyncio
async def test_an_agent_that_joined_mid_epoch_sits_it_out():
    assert await run_to_report_time(joined_at_offset=10) == []


@pytest.mark.asyncio
async def test_many_reports_go_in_several_requests_under_the_servers_limit():
    batches = []

    async def reports(request):
        body = await request.json()
        batches.append(len(body["reports"]))
        return web.json_response({"results": [{"status": 201} for _ in body["reports"]]})

    async with fake_dashboard({("POST", "/api/agent/reports/batch/"): reports}) as url:
        agent = CheckerAgent(api_url=url, token="agt_x")
        try:
            await agent.submit(5, list(range(1, 1_201)))
        finally:
            await agent.session.close()
    assert batches == [500, 500, 200]
    assert agent.reports_sent == 1_200


@pytest.mark.asyncio
async def test_a_slow_answer_is_timed_again_and_the_faster_counts():
    """A stall on the checker's own host makes one answer slow; the second
    request right after is what the report uses. A node that is really slow
    is slow both times."""
    delays = {"stall": [0.3, 0.0], "slow": [0.3, 0.3]}
    calls = {"stall": 0, "slow": 0}

    def health(kind):
        async def handler(request):
            await asyncio.sleep(delays[kind][min(calls[kind], 1)])
            calls[kind] += 1
            return web.json_response({"gpu_name": "NVIDIA H100 80GB", "gpu_count": 1})

        return handler

    routes = {("GET", "/stall"): health("stall"), ("GET", "/slow"): health("slow")}
    async with fake_dashboard(routes) as url:
        agent = CheckerAgent(api_url=url, token="agt_x", timeout=2, policy=AddressPolicy(allow=LOOPBACK))
        try:
            for node, kind in ((1, "stall"), (2, "slow")):
                await agent.probe(
                    5,
                    {"node": node, "endpoint": f"{url}/{kind}", "gpu_model": "NVIDIA H100 80GB", "gpu_count": 1},
                    asyncio.Semaphore(1),
                )
        finally:
            await agent.close()
    assert calls == {"stall": 2, "slow": 1 + RETIMES}
    assert agent.tallies[(5, 1)].latencies[0] < 150
    assert agent.tallies[(5, 2)].latencies[0] >= 290
    assert agent.tallies[(5, 1)].spec_match == agent.tallies[(5, 2)].spec_match == 1


@pytest.mark.asyncio
async def test_a_health_answer_that_is_not_an_object_is_not_answered():
    """A node answering ``[]`` (valid JSON, not an object) counts as not
    answered; the agent goes on."""

    async def health(request):
        return web.json_response([])

    async with fake_dashboard({("GET", "/health"): health}) as url:
        agent = CheckerAgent(api_url=url, token="agt_x", timeout=1, policy=AddressPolicy(allow=LOOPBACK))
        try:
            await agent.probe(
                5, {"node": 1, "endpoint": f"{url}/health", "gpu_model": "x", "gpu_count": 1}, asyncio.Semaphore(1)
            )
        finally:
            await agent.close()
    tally = agent.tallies[(5, 1)]
    assert (tally.probes, tally.connected, tally.answered) == (1, 1, 0)

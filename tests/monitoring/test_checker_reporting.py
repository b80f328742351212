"""How a checker agent sends its reports: only for epochs it observed from
their start (a fresh or restarted agent sits its first, partial epoch out
rather than risk a report judged incorrect against checkers that saw all of
it), and in requests under the dashboard's limit per batch."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from apps.monitoring.agents.checker import CheckerAgent

from .fake_dashboard import fake_dashboard


async def run_to_report_time(joined_at_offset: float) -> list:
    """One epoch that started 30 s ago and ends in 1 s (report time); the
    agent joined ``joined_at_offset`` seconds after the epoch started."""
    start = datetime.now(UTC) - timedelta(seconds=30)
    end = datetime.now(UTC) + timedelta(seconds=1)
    batches = []

    async def assignments(request):
        return web.json_response({"epoch": 5, "epoch_start": start.isoformat(), "epoch_end": end.isoformat(),
                                  "assignments": [{"node": 1, "endpoint": "http://127.0.0.1:9/health"}]})

    async def reports(request):
        batches.append(await request.json())
        return web.json_response({"results": [{"status": 201}]})

    routes = {("GET", "/api/agent/assignments/"): assignments, ("POST", "/api/agent/reports/batch/"): reports}
    async with fake_dashboard(routes) as url:
        agent = CheckerAgent(api_url=url, token="agt_x", probe_every=2, timeout=0.2)
        agent.joined_at = start.timestamp() + joined_at_offset
        agent.rounds[5] = 5  # it has been probing for several rounds already
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

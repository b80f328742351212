"""Agents are mortal processes talking to a mortal server: an error page
instead of an API answer (a worker restarting, Redis down, a proxy between
restarts) must cost a round, never the agent."""

import asyncio

import pytest
from aiohttp import web

from apps.monitoring.agents.checker import CheckerAgent

from .fake_dashboard import fake_dashboard


@pytest.mark.asyncio
async def test_a_checker_survives_an_html_error_page_and_carries_on():
    calls = []

    async def assignments(request):
        calls.append(request.path)
        if len(calls) == 1:
            return web.Response(status=500, text="<h1>Server Error (500)</h1>", content_type="text/html")
        return web.json_response(
            {
                "epoch": 7,
                "epoch_start": "2026-01-01T00:00:00+00:00",
                "epoch_end": "2999-01-01T00:00:00+00:00",
                "assignments": [],
            }
        )

    async with fake_dashboard({("GET", "/api/agent/assignments/"): assignments}) as url:
        agent = CheckerAgent(api_url=url, token="agt_x", probe_every=0.5)
        try:
            sem = asyncio.Semaphore(4)
            # The error page: no exception, the agent waits a round and tries again.
            assert await agent.cycle(sem) == agent.probe_every
            # The server is back: the next round goes through.
            await agent.cycle(sem)
            assert len(calls) == 2
        finally:
            await agent.session.close()

"""A checker agent against nodes that attack it: a health answer that is a
JSON list, garbage bytes, fields of the wrong type, a 50 MB body, one byte
a second, a redirect into the checker's own network, an endpoint that is not
a URL. The real agent, real sockets: it survives every one, reports the
honest node as answering and each hostile one as not answering, with the
reason, and none of its reports contradicts itself."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from apps.monitoring import consensus
from apps.monitoring.agents.addresses import LOOPBACK, AddressPolicy
from apps.monitoring.agents.checker import CheckerAgent, NotAnswered, health_facts

from .fake_dashboard import fake_dashboard
from .hostile_nodes import HONEST, HUGE_BYTES, counting_server, hostile_nodes

PPM = 1_000_000
# What each node's report must say about it: the reason names the attack.
REASONS = {
    "json-list": "a JSON list, not an object",
    "garbage": "not JSON",
    "wrong-types": "gpu_name is not a string",
    "huge": "over 64 KiB",
    "drip": "no complete answer within",
    "redirect": "redirects are not followed",
    "bad-port": "not a valid URL",
    "metadata": "169.254.169.254 is a cloud metadata address",
}


async def one_epoch(endpoints: dict[str, str], policy: AddressPolicy) -> tuple[dict, float]:
    """Run the agent's round at report time of an epoch in which it was
    assigned every node of ``endpoints``: returns ({kind: report}, seconds)."""
    start = datetime.now(UTC) - timedelta(seconds=30)
    end = datetime.now(UTC) + timedelta(seconds=1)
    kinds = list(endpoints)
    sent = []

    async def assignments(request):
        return web.json_response(
            {
                "epoch": 5,
                "epoch_start": start.isoformat(),
                "epoch_end": end.isoformat(),
                "assignments": [
                    {
                        "node": i + 1,
                        "endpoint": endpoints[k],
                        "gpu_model": HONEST["gpu_name"],
                        "gpu_count": HONEST["gpu_count"],
                    }
                    for i, k in enumerate(kinds)
                ],
            }
        )

    async def reports(request):
        body = await request.json()
        sent.extend(body["reports"])
        return web.json_response({"results": [{"status": 201} for _ in body["reports"]]})

    routes = {("GET", "/api/agent/assignments/"): assignments, ("POST", "/api/agent/reports/batch/"): reports}
    async with fake_dashboard(routes) as url:
        agent = CheckerAgent(api_url=url, token="agt_x", probe_every=2, timeout=1.5, policy=policy)
        agent.joined_at = start.timestamp() - 60  # it saw the whole epoch
        started = time.monotonic()
        try:
            await agent.cycle(asyncio.Semaphore(16))
        finally:
            await agent.close()
    return {kinds[r["node"] - 1]: r for r in sent}, time.monotonic() - started


@pytest.mark.asyncio
async def test_hostile_nodes_are_reported_down_with_the_reason_and_the_honest_one_normally():
    async with counting_server() as (inside, inside_hits), hostile_nodes(redirect_to=inside) as (endpoints, sent):
        endpoints = dict(
            endpoints,
            **{"bad-port": "http://127.0.0.1:99999/health", "metadata": "http://169.254.169.254/latest/meta-data/"},
        )
        reports, took = await one_epoch(endpoints, AddressPolicy(allow=LOOPBACK))

    assert set(reports) == set(endpoints), "a report for every node, hostile or not"
    honest = reports["honest"]
    assert (honest["uptime_ppm"], honest["task_ppm"], honest["spec_ok"]) == (PPM, PPM, True)
    assert honest["latency_ms"] is not None and "reason" not in honest
    for kind, why in REASONS.items():
        report = reports[kind]
        assert report["task_ppm"] == 0 and report["latency_ms"] is None and report["spec_ok"] is None, kind
        assert why in report.get("reason", ""), (kind, report.get("reason"))
    for kind, report in reports.items():
        # Valid against the consensus rules: no node can make a report false on its face.
        assert consensus.contradiction(report) is None, (kind, report)
    assert not inside_hits, "the redirect was followed"
    assert sent["huge"] < HUGE_BYTES / 2, "the huge body was read (or sent) to the end"
    assert took < 15, "the slow drip held the round"


@pytest.mark.asyncio
async def test_refused_targets_are_not_connected_to():
    """Loopback is not allowed by default: a node declaring it is reported
    down with the reason, and its server never sees a request."""
    async with counting_server() as (endpoint, hits):
        reports, _ = await one_epoch({"loopback": endpoint}, AddressPolicy())
    assert not hits
    report = reports["loopback"]
    assert report["uptime_ppm"] == report["task_ppm"] == 0
    assert "127.0.0.1 is loopback" in report["reason"]


def test_the_health_schema():
    assert health_facts(b'{"gpu_name": "NVIDIA H100 80GB", "gpu_count": 8, "extra": [1]}') == ("NVIDIA H100 80GB", 8)
    for engine in (b'"ok"', b'"none"'):
        assert health_facts(b'{"gpu_name": "x", "gpu_count": 1, "engine": ' + engine + b"}") == ("x", 1)
    for body in (
        b"[]",
        b"null",
        b"7",
        b'"x"',
        b"{}",
        b'{"gpu_name": "x"}',
        b'{"gpu_count": 1}',
        b'{"gpu_name": 1, "gpu_count": 1}',
        b'{"gpu_name": "x", "gpu_count": true}',
        b'{"gpu_name": "x", "gpu_count": 1.0}',
        b'{"gpu_name": "x", "gpu_count": -1}',
        b'{"gpu_name": "x", "gpu_count": 1025}',
        b'{"gpu_name": "x", "gpu_count": 1e999}',
        b'{"gpu_name": "' + b"x" * 300 + b'", "gpu_count": 1}',
        b"\xff\xfe",
        b"[" * 100_000,
        b'{"gpu_name": "x", "gpu_count": ' + b"9" * 5000 + b"}",
        b'{"gpu_name": "x", "gpu_count": 1, "engine": "down"}',  # it cannot run what it is rented for
    ):
        with pytest.raises(NotAnswered):
            health_facts(body)

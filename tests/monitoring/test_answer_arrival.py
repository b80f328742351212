"""A checker's own stall is not the node's latency: the answer is timed to
when its last byte arrived (per the kernel), not to when the checker's busy
event loop got round to reading it. The real agent against a node served
from another thread, with the agent's loop blocked while the answer is on
its way."""

import asyncio
import ipaddress
import socket
import sys
import threading
import time

import pytest
from aiohttp import web

from apps.monitoring.agents import arrival
from apps.monitoring.agents.addresses import AddressPolicy, parse_endpoint
from apps.monitoring.agents.checker import CheckerAgent

from .hostile_nodes import HONEST

STALL_S = 0.4  # the checker's host, busy elsewhere
NODE_MS = 20  # how long the node really takes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO is Linux's")


class NodeThread:
    """A node on its own thread and loop. On each request it blocks the
    checker's loop (``stall_loop``) and answers ``NODE_MS`` later, so the
    answer arrives while the checker cannot read it."""

    def __init__(self):
        self.stall_loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _health(self, request):
        return await self._answer(web.json_response(HONEST))

    async def _challenge(self, request):
        await request.read()
        return await self._answer(web.json_response({"ok": True}))

    async def _answer(self, response):
        if self.stall_loop is not None:
            self.stall_loop.call_soon_threadsafe(time.sleep, STALL_S)  # sleeps without the GIL
        await asyncio.sleep(NODE_MS / 1000)
        return response

    def _run(self):
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_post("/challenge", self._challenge)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self):
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def agent() -> CheckerAgent:
    return CheckerAgent(api_url="http://127.0.0.1:9", token="agt_x", timeout=5, policy=AddressPolicy.loopback_only())


@pytest.mark.asyncio
async def test_a_stall_of_the_checkers_own_loop_is_not_in_the_latency():
    with NodeThread() as node:
        node.stall_loop = asyncio.get_running_loop()
        checker = agent()
        a = {"node": 1, "endpoint": f"http://127.0.0.1:{node.port}/health"}
        a |= {"gpu_model": HONEST["gpu_name"], "gpu_count": HONEST["gpu_count"]}
        started = time.monotonic()
        try:
            await checker.probe(5, a, asyncio.Semaphore(1))
        finally:
            await checker.close()
        took_ms = (time.monotonic() - started) * 1000
    report = checker.measured(5, 1)
    assert report["task_ppm"] == 1_000_000
    assert took_ms >= STALL_S * 1000, "every try was read only after the stall"
    # The node's time (and a kernel tick or two), never the stall's.
    assert NODE_MS - 5 <= report["latency_ms"] < STALL_S * 1000 / 2


@pytest.mark.asyncio
async def test_a_challenge_answer_is_timed_to_its_arrival():
    with NodeThread() as node:
        node.stall_loop = asyncio.get_running_loop()
        checker = agent()
        target = parse_endpoint(f"http://127.0.0.1:{node.port}/challenge")
        try:
            answer = await checker._post(target, ipaddress.ip_address("127.0.0.1"), {"seed": "00"}, 1024, 5)
        finally:
            await checker.close()
    elapsed_ms, body = answer
    assert body == {"ok": True}
    assert NODE_MS - 5 <= elapsed_ms < STALL_S * 1000 / 2


def test_arrival_is_never_before_the_request_and_falls_back_to_now():
    sent = time.monotonic()
    assert arrival.answered_at(None, sent) >= sent  # no socket: the read time
    with socket.socket() as s:  # not connected: the kernel has no figure worth more than now
        assert sent <= arrival.answered_at(s, sent) <= time.monotonic()
    closed = socket.socket()
    closed.close()
    assert arrival.last_data_age(closed) is None

"""Health endpoints that attack the checker instead of answering it, each
an aiohttp server on a loopback port of its own: the shapes a provider has
used (or could) to crash, stall or redirect checker agents."""

import asyncio
import os
from contextlib import AsyncExitStack, asynccontextmanager

from aiohttp import web

from .fake_dashboard import serve

HONEST = {"gpu_name": "NVIDIA H100 80GB", "gpu_count": 1}
HUGE_BYTES = 50 * 1024 * 1024


def _kinds(sent: dict, redirect_to: str):
    async def honest(request):
        return web.json_response(HONEST)

    async def json_list(request):
        return web.json_response([])

    async def garbage(request):
        return web.Response(body=os.urandom(512), content_type="application/json")

    async def wrong_types(request):
        return web.json_response({"gpu_name": ["NVIDIA H100 80GB"], "gpu_count": "1"})

    async def huge(request):
        # A valid health object padded to 50 MB, sent without a length: only
        # reading it to the end would tell it from an honest answer.
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        sent["huge"] = 0
        head = b'{"gpu_name": "NVIDIA H100 80GB", "gpu_count": 1, "pad": "'
        chunk = b"x" * (1024 * 1024)
        try:
            await response.write(head)
            while sent["huge"] < HUGE_BYTES:
                await response.write(chunk)
                sent["huge"] += len(chunk)
            await response.write(b'"}')
        except (ConnectionError, RuntimeError):  # the checker hung up
            pass
        return response

    async def drip(request):
        # One byte a second of a valid answer: connected at once, complete never.
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            for byte in b'{"gpu_name": "NVIDIA H100 80GB", "gpu_count": 1}':
                await response.write(bytes([byte]))
                await asyncio.sleep(1)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def redirect(request):
        raise web.HTTPFound(redirect_to)

    return {
        "honest": honest,
        "json-list": json_list,
        "garbage": garbage,
        "wrong-types": wrong_types,
        "huge": huge,
        "drip": drip,
        "redirect": redirect,
    }


KINDS = ("honest", "json-list", "garbage", "wrong-types", "huge", "drip", "redirect")


@asynccontextmanager
async def _serve(handler):
    app = web.Application()
    app.router.add_get("/health", handler)
    async with serve(app, access_log=None, shutdown_timeout=0.1) as url:
        yield f"{url}/health"


@asynccontextmanager
async def hostile_nodes(redirect_to: str = "http://169.254.169.254/latest/meta-data/"):
    """Yields ({kind: endpoint}, sent), ``sent["huge"]`` counting the bytes
    the huge node managed to send."""
    sent: dict = {}
    handlers = _kinds(sent, redirect_to)
    async with AsyncExitStack() as stack:
        endpoints = {kind: await stack.enter_async_context(_serve(handlers[kind])) for kind in KINDS}
        yield endpoints, sent


@asynccontextmanager
async def counting_server():
    """A health endpoint that counts the requests it gets: (endpoint, hits)."""
    hits = []

    async def handler(request):
        hits.append(request.path)
        return web.json_response(HONEST)

    async with _serve(handler) as endpoint:
        yield endpoint, hits

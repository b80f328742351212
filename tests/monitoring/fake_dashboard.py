"""A stand-in dashboard for agent tests: an aiohttp server on a free
loopback port with the routes a test gives it."""

from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def fake_dashboard(routes: dict):
    """``routes`` maps ("GET", "/api/agent/assignments/") to a handler;
    yields the base URL."""
    app = web.Application()
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()

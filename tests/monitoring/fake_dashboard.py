"""A stand-in dashboard for agent tests: an aiohttp server on a free
loopback port with the routes a test gives it."""

from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def serve(app: web.Application, **runner_options):
    """Serve ``app`` on a free loopback port until the block ends; yields
    the base URL."""
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def fake_dashboard(routes: dict):
    """``routes`` maps ("GET", "/api/agent/assignments/") to a handler;
    yields the base URL."""
    app = web.Application()
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    async with serve(app) as url:
        yield url

#!/usr/bin/env python
"""Live fan-out: how long a change takes to reach every open page.

Builds its own network (a temporary SQLite file, or the PostgreSQL database
named by ``--database-url``, dropped and created afresh), starts the site the
production way (``manage.py serve --workers N``; with ``--redis-url`` the
channel layer is Redis, else the in-memory one, which only works with one
worker), and opens ``--clients`` WebSockets through Channels, spread over
the monitoring overview (40%), ten node pages (30%) and the explorer's
ledger feed (30%), as browsers on those pages do.

Then, ``--rounds`` times: the watched nodes' agents post a heartbeat batch
through the agent API and, at the same moment, a ledger transfer commits
from another process (as the scheduler's settlement does); the time from
the write to each client's next update is recorded. Rounds are 2 s apart,
since each page redraws at most once a second. Prints p50/p95/p99/max per
page and overall, and how many clients missed an update.

    .venv/bin/python bench/fanout.py [--clients 1000] [--workers 1] [--rounds 5]
    .venv/bin/python bench/fanout.py --workers 4 --redis-url redis://127.0.0.1:6379/12 \\
        --database-url postgres://postgres@127.0.0.1:5432/aethir_fanout
"""

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Site, fresh_postgres  # noqa: E402

WATCHED_NODES = 10


def environment(args, var: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        AETHIR_VAR_DIR=str(var),
        DEBUG="0",
        SECRET_KEY="fanout-" + secrets.token_hex(32),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE="aethir_web.settings",
        SECURE_SSL_REDIRECT="0",
        AGENT_RATE="100000/minute",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        REDIS_PREFIX=f"aethir-fanout-{os.getpid()}",
        STATIC_ROOT=str(var / "static"),
    )
    env["DATABASE_URL"] = fresh_postgres(args.database_url) if args.database_url else f"sqlite:///{var / 'db.sqlite3'}"
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    return env


def build(env: dict, nodes: int):
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from bench.ingest import build as build_nodes

    tokens = build_nodes(nodes)
    call_command("collectstatic", interactive=False, verbosity=0)
    from apps.core.models import GpuNode

    ids = list(GpuNode.objects.order_by("id").values_list("id", flat=True))
    return list(zip(ids, tokens, strict=True))


def ledger_write() -> None:
    from apps.core import ledger
    from apps.core.models import ModuleAccount

    ledger.transfer(ledger.module_account(ModuleAccount.FAUCET), ledger.module_account(ModuleAccount.COMMUNITY_POOL), 1)


class Client:
    def __init__(self, page: str, path: str):
        self.page, self.path = page, path
        self.received: list[float] = []
        self.sizes: list[int] = []


async def run(args, site: Site, watched: list[tuple[int, str]]) -> dict:
    import aiohttp

    origin = site.url
    clients = []
    for i in range(args.clients):
        share = i % 10
        if share < 4:
            clients.append(Client("monitoring overview", "/ws/monitoring/"))
        elif share < 7:
            node_id = watched[i % len(watched)][0]
            clients.append(Client("monitoring node page", f"/ws/monitoring/nodes/{node_id}/"))
        else:
            clients.append(Client("explorer ledger feed", "/ws/ledger/"))

    connector = aiohttp.TCPConnector(limit=0)
    session = aiohttp.ClientSession(connector=connector)
    sockets = []

    async def listen(client: Client):
        ws = await session.ws_connect(site.url.replace("http", "ws") + client.path, headers={"Origin": origin})
        sockets.append(ws)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                client.received.append(time.monotonic())
                client.sizes.append(len(msg.data))
            else:
                break

    t = time.monotonic()
    tasks = []
    for start in range(0, len(clients), 100):  # connect in waves, as a page load spreads
        tasks += [asyncio.ensure_future(listen(c)) for c in clients[start : start + 100]]
        await asyncio.sleep(0.1)
    while len(sockets) < len(clients) and time.monotonic() - t < 120:
        await asyncio.sleep(0.1)
    connected = len(sockets)
    print(f"  {connected:,} of {len(clients):,} clients connected in {time.monotonic() - t:.1f} s")
    await asyncio.sleep(2)

    sample = {
        "gpu_util": 57,
        "mem_used_mb": 40_000,
        "mem_total_mb": 81_920,
        "temperature_c": 64,
        "power_w": 520,
        "workloads": 1,
    }
    latencies: dict[str, list[float]] = {}
    missed = 0
    loop = asyncio.get_running_loop()
    for _ in range(args.rounds):
        for c in clients:
            c.received.clear()
        written = time.monotonic()
        now = datetime.now(UTC)

        async def post(token, now=now):
            body = {"samples": [dict(sample, at=(now - timedelta(milliseconds=1)).isoformat())]}
            async with session.post(
                site.url + "/api/agent/heartbeats/", json=body, headers={"Authorization": f"Agent {token}"}
            ) as r:
                await r.read()
                if r.status != 201:
                    raise SystemExit(f"heartbeat refused: {r.status} {await r.text()}")

        await asyncio.gather(*(post(tok) for _, tok in watched), loop.run_in_executor(None, ledger_write))
        deadline = written + args.wait
        while time.monotonic() < deadline and any(not c.received for c in clients):
            await asyncio.sleep(0.02)
        for c in clients:
            if c.received:
                latencies.setdefault(c.page, []).append(c.received[0] - written)
            else:
                missed += 1
        await asyncio.sleep(max(0.0, written + 2.2 - time.monotonic()))

    for ws in sockets:
        await ws.close()
    for task in tasks:
        task.cancel()
    await session.close()
    sizes: dict[str, list[int]] = {}
    for c in clients:
        sizes.setdefault(c.page, []).extend(c.sizes)
    return {"connected": connected, "latencies": latencies, "missed": missed, "sizes": sizes}


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))] * 1000 if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--wait", type=float, default=10.0, help="seconds a round waits for every client")
    parser.add_argument("--database-url", help="PostgreSQL; its database is dropped and created afresh")
    parser.add_argument("--redis-url", help="Redis channel layer (needed for more than one worker)")
    args = parser.parse_args()
    if args.workers > 1 and not args.redis_url:
        raise SystemExit("several workers need --redis-url: the in-memory layer does not cross processes")

    var = Path(tempfile.mkdtemp(prefix="aethir-fanout-"))
    env = environment(args, var)
    network = build(env, max(args.nodes, WATCHED_NODES))
    watched = network[:WATCHED_NODES]
    site = Site(env, args.workers, var, scheduler=False).start()
    layer = "Redis" if args.redis_url else "in-memory"
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"{args.workers} worker(s), {layer} channel layer, {database}, {args.clients:,} WebSocket clients")
    try:
        result = asyncio.run(run(args, site, watched))
    finally:
        site.stop()
    everything = [v for values in result["latencies"].values() for v in values]
    print(f"  write -> client update, ms, over {args.rounds} rounds:")
    print(f"  {'page':24} {'updates':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'KiB/update':>11}")
    for page, values in sorted(result["latencies"].items()) + [("all", everything)]:
        sizes = result["sizes"].get(page) or [v for vs in result["sizes"].values() for v in vs]
        print(
            f"  {page:24} {len(values):8,d} {pct(values, 50):8.0f} {pct(values, 95):8.0f} "
            f"{pct(values, 99):8.0f} {pct(values, 100):8.0f} {sum(sizes) / max(1, len(sizes)) / 1024:11.1f}"
        )
    print(f"  updates missed (none within {args.wait:.0f} s): {result['missed']:,}")


if __name__ == "__main__":
    main()

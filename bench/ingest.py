"""Heartbeat ingest benchmark.

Builds its own network in a fresh database (10,000 GPU nodes per batch
size and worker count, each with an agent token), starts the web server on
it (``manage.py serve``: one Daphne process by default), then posts batched
heartbeats for every node through the real agent API and prints samples
per second and batch latency percentiles. It then posts the same payloads
to a minimal Django view on the same server, so the ratio shows the cost
of the project's own code (auth, validation, the insert).

    .venv/bin/python bench/ingest.py [--nodes 10000] [--batch 3,20] [--concurrency 16]

On the production engines, with 1, 2 and 4 web processes one after the
other (each on agents of its own; the database is dropped and created):

    .venv/bin/python bench/ingest.py --workers 1,2,4 \
        --database-url postgres://postgres@127.0.0.1:5432/aethir_ingest --redis-url redis://127.0.0.1:6379/9

With several processes the kernel spreads the clients' connections over
them, so an agent's next post may reach a process that has not seen its
token yet (one lookup there), as behind any load balancer.

Batch sizes: ``run_provider_agent`` samples every 5 s and posts every 15 s,
so an agent with its defaults sends 3 samples per request: that is the
steady state, where the cost per request decides. 20 is what every agent
sends at once after the dashboard was unreachable for about 100 s (a
restart, a deploy), the burst the ingest must absorb; agents send at most
500 per request. Samples/s at batch 3 and at batch 20 are both printed.

Each agent posts twice per batch size: its first post, when the server has
not seen its token yet (one lookup), then its next one, as every later post
of a running agent is (the token is remembered; see
``apps.monitoring.auth.agent_token``). Each batch size has agents of its own.
The next posts and the minimal view alternate in rounds (``--rounds 5``, a
fifth of the agents each), so each round's ratio is taken under the same
conditions; the median and range of those ratios are printed with the
totals.

Beside the rates it prints the CPU time each side spent per request (Linux):
the server's (all its web processes together), whose inverse is what one
core serves whatever else the machine is doing, and the client's, which
shows that the load generator is not the bottleneck. Database and Redis
servers are not counted in the server's.
"""

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Site, fresh_postgres  # noqa: E402


def build(nodes: int) -> list[str]:
    """Create the network straight in the database (fast bulk inserts) and
    return one raw token per node."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from apps.core import ledger
    from apps.core.models import AgentToken, GpuModel, GpuNode, Region, hash_token

    call_command("migrate", verbosity=0)
    ledger.genesis()
    providers = User.objects.bulk_create(User(username=f"bench-provider-{i}") for i in range(100))
    models, regions = list(GpuModel.objects.all()), list(Region.objects.all())
    rows = GpuNode.objects.bulk_create(
        (
            GpuNode(
                provider=providers[i % 100],
                name=f"bench-{i}",
                gpu_model=models[i % len(models)],
                gpu_count=1 + i % 8,
                vcpu=16,
                ram_gb=128,
                region=regions[i % len(regions)],
                bandwidth_mbps=1000,
                price_per_gpu_hour=2_000_000,
                endpoint="http://127.0.0.1:1/health",
                status="online",
            )
            for i in range(nodes)
        ),
        batch_size=2000,
    )
    tokens = [f"agt_bench_{i}_{os.urandom(8).hex()}" for i in range(nodes)]
    AgentToken.objects.bulk_create(
        (AgentToken(key_hash=hash_token(t), prefix=t[4:12], node=n) for t, n in zip(tokens, rows, strict=True)),
        batch_size=2000,
    )
    return tokens


def cpu_seconds(group: int | None = None) -> float | None:
    """CPU time (user + system) of this process, or of every live process
    in process group ``group`` (Linux): the web server's supervisor and its
    workers. ``None`` where /proc cannot tell."""
    if group is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    ticks, found = 0, False
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
            found = True
    return ticks / os.sysconf("SC_CLK_TCK") if found else None


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


async def drive(url: str, path: str, tokens: list[str], batch: int, concurrency: int) -> dict:
    import aiohttp

    sample = {
        "gpu_util": 57,
        "mem_used_mb": 40_000,
        "mem_total_mb": 81_920,
        "temperature_c": 64,
        "power_w": 520,
        "workloads": 1,
    }
    latencies, errors = [], 0
    queue = asyncio.Queue()
    for t in tokens:
        queue.put_nowait(t)

    async def worker(session):
        nonlocal errors
        while True:
            try:
                token = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            # As the agent sends them: one sample every 5 s, the newest now
            # (the server stores one sample per node and instant).
            now = datetime.now(UTC)
            body = {"samples": [dict(sample, at=(now - timedelta(seconds=5 * k)).isoformat()) for k in range(batch)]}
            started = time.perf_counter()
            async with session.post(url + path, json=body, headers={"Authorization": f"Agent {token}"}) as r:
                await r.read()
                if r.status >= 300:
                    errors += 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return {"latencies": latencies, "errors": errors, "seconds": time.perf_counter() - started, "batch": batch}


def measure(site, path: str, tokens: list[str], batch: int, concurrency: int) -> dict:
    # serve's supervisor leads a process group of its own (start_new_session).
    server0, client0 = cpu_seconds(site.web.pid), cpu_seconds()
    result = asyncio.run(drive(site.url, path, tokens, batch, concurrency))
    server1, client1 = cpu_seconds(site.web.pid), cpu_seconds()
    result["server_s"] = None if server0 is None or server1 is None else server1 - server0
    result["client_s"] = client1 - client0
    return summary([result])


def summary(parts: list[dict]) -> dict:
    """The figures of one or more measurements of the same kind, together."""
    latencies = sorted(x for p in parts for x in p["latencies"])
    n, seconds = max(1, len(latencies)), sum(p["seconds"] for p in parts)
    server = None if any(p["server_s"] is None for p in parts) else sum(p["server_s"] for p in parts)
    return {
        "latencies": latencies,
        "errors": sum(p["errors"] for p in parts),
        "seconds": seconds,
        "batch": parts[0]["batch"],
        "server_s": server,
        "client_s": sum(p["client_s"] for p in parts),
        "requests": len(latencies),
        "samples_per_s": len(latencies) * parts[0]["batch"] / seconds,
        "requests_per_s": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "server_ms": None if server is None else server / n * 1000,
        "client_ms": sum(p["client_s"] for p in parts) / n * 1000,
    }


def alternate(site, tokens: list[str], batch: int, concurrency: int, rounds: int):
    """Every agent's next post and the minimal view, in ``rounds`` alternating
    rounds over slices of the agents (in turn first and second, so a drift
    in the machine's speed weighs on both alike): returns both, all rounds
    together, and each round's pair. The ratio of a pair is measured under
    the same conditions; one after the other over a minute it moved by up to
    two tenths with whatever else the machine was doing."""
    pairs = []
    for k in range(rounds):
        chunk = tokens[k::rounds]
        if k % 2 == 0:
            post = measure(site, "/api/agent/heartbeats/", chunk, batch, concurrency)
            minimal = measure(site, "/healthz", chunk, batch, concurrency)
        else:
            minimal = measure(site, "/healthz", chunk, batch, concurrency)
            post = measure(site, "/api/agent/heartbeats/", chunk, batch, concurrency)
        pairs.append((post, minimal))
    return summary([p for p, _ in pairs]), summary([m for _, m in pairs]), pairs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=10_000, help="agents per batch size and worker count")
    parser.add_argument("--batch", default="3,20", help="samples per heartbeat batch; several, comma-separated")
    parser.add_argument(
        "--workers", default="1", help="web processes; several, comma-separated, run one after the other"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating rounds of the next post and the minimal view"
    )
    parser.add_argument("--database-url", default="", help="a PostgreSQL URL; the database is dropped and created")
    parser.add_argument("--redis-url", default="", help="Redis for the cache, rate limits and channel layer")
    args = parser.parse_args()
    batches = [int(b) for b in args.batch.split(",") if b.strip()]
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]

    var = Path(tempfile.mkdtemp(prefix="aethir-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        AETHIR_VAR_DIR=str(var),
        DEBUG="0",
        SECRET_KEY="bench-" + "k" * 50,
        SECURE_SSL_REDIRECT="0",
        ALLOWED_HOSTS="127.0.0.1",
        AGENT_RATE="100000/minute",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="aethir_web.settings",
        REDIS_PREFIX=f"aethir-ingest-{os.getpid()}",
    )
    engine = "SQLite"
    if args.database_url:
        env["DATABASE_URL"], engine = fresh_postgres(args.database_url, "aethir_ingest"), "PostgreSQL"
    if args.redis_url:
        env["REDIS_URL"], engine = args.redis_url, engine + " + Redis"
    os.environ.update(env)
    t0 = time.perf_counter()
    size = args.nodes * len(batches)
    everyone = build(size * len(worker_counts))
    print(
        f"built {len(everyone):,} nodes with agent tokens in {time.perf_counter() - t0:.1f}s "
        f"({engine}): {args.nodes:,} agents per batch size and worker count"
    )
    for w, workers in enumerate(worker_counts):
        site = Site(env, workers, var, scheduler=False).start()
        runs = []
        try:
            for i, batch in enumerate(batches):
                tokens = everyone[w * size + i * args.nodes : w * size + (i + 1) * args.nodes]
                first = measure(site, "/api/agent/heartbeats/", tokens, batch, args.concurrency)
                again, baseline, pairs = alternate(site, tokens, batch, args.concurrency, max(1, args.rounds))
                runs.append((batch, first, again, baseline, pairs))
        finally:
            site.stop()
        report(workers, args.concurrency, runs)


def report(workers: int, concurrency: int, runs: list) -> None:
    processes = "one Daphne process" if workers == 1 else f"{workers} Daphne processes"
    print(f"{processes}, {concurrency} concurrent clients, one batch per node and round")
    for batch, first, again, baseline, pairs in runs:
        print(f"{batch} samples per batch:")
        for name, r in (
            ("heartbeats, first post", first),
            ("heartbeats, next post", again),
            ("minimal Django view", baseline),
        ):
            cpu = f"  server CPU {r['server_ms']:.2f} ms/req" if r["server_ms"] is not None else ""
            print(
                f"  {name:22s} {r['samples_per_s']:9,.0f} samples/s  {r['requests_per_s']:7,.0f} req/s  "
                f"p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}"
                f"{cpu}  client CPU {r['client_ms']:.2f} ms/req"
            )
        for name, r in (("first post", first), ("next post", again)):
            wall = baseline["requests_per_s"] / r["requests_per_s"]
            cpu = ""
            if r["server_ms"] is not None and baseline["server_ms"]:
                cpu = f", {r['server_ms'] / baseline['server_ms']:.2f}x its server CPU"
            print(f"  {name}: {wall:.2f}x the minimal view's time per request{cpu}")
        if len(pairs) > 1:
            by_time = sorted(m["requests_per_s"] / p["requests_per_s"] for p, m in pairs)
            line = f"  next post, round by round ({len(pairs)} alternating): {spread(by_time)} the minimal view's time"
            if all(p["server_ms"] and m["server_ms"] for p, m in pairs):
                line += f", {spread(sorted(p['server_ms'] / m['server_ms'] for p, m in pairs))} its server CPU"
            print(line)


def spread(ratios: list[float]) -> str:
    """Median and range of sorted ratios: "1.42x (1.35x to 1.50x)"."""
    n = len(ratios)
    median = ratios[n // 2] if n % 2 else (ratios[n // 2 - 1] + ratios[n // 2]) / 2
    return f"median {median:.2f}x ({ratios[0]:.2f}x to {ratios[-1]:.2f}x)"


if __name__ == "__main__":
    main()

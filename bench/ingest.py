"""Heartbeat ingest benchmark.

Builds its own network in a fresh SQLite database (10,000 GPU nodes, each
with an agent token), starts one Daphne process on it, then posts batched
heartbeats for every node through the real agent API and prints samples
per second and batch latency percentiles. It then posts the same payloads
to a minimal Django view on the same server, so the ratio shows the cost
of the project's own code (auth, validation, the insert).

    .venv/bin/python bench/ingest.py [--nodes 10000] [--batch 20] [--concurrency 16]
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
            GpuNode(provider=providers[i % 100], name=f"bench-{i}", gpu_model=models[i % len(models)], gpu_count=1 + i % 8,
                    vcpu=16, ram_gb=128, region=regions[i % len(regions)], bandwidth_mbps=1000,
                    price_per_gpu_hour=2_000_000, endpoint="http://127.0.0.1:1/health", status="online")
            for i in range(nodes)
        ),
        batch_size=2000,
    )
    tokens = [f"agt_bench_{i}_{os.urandom(8).hex()}" for i in range(nodes)]
    AgentToken.objects.bulk_create(
        (AgentToken(key_hash=hash_token(t), prefix=t[4:12], node=n) for t, n in zip(tokens, rows)), batch_size=2000
    )
    return tokens


def start_server(env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "aethir_web.asgi:application"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


async def drive(url: str, path: str, tokens: list[str], batch: int, concurrency: int) -> dict:
    import aiohttp

    sample = {"gpu_util": 57, "mem_used_mb": 40_000, "mem_total_mb": 81_920, "temperature_c": 64, "power_w": 520, "workloads": 1}
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
            now = datetime.now(UTC).isoformat()
            body = {"samples": [dict(sample, at=now) for _ in range(batch)]}
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
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies), "errors": errors, "seconds": elapsed,
        "samples_per_s": len(latencies) * batch / elapsed, "requests_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000, "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=20, help="samples per heartbeat batch")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="aethir-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(AETHIR_VAR_DIR=str(var), DEBUG="0", SECRET_KEY="bench-" + "k" * 50, SECURE_SSL_REDIRECT="0",
               ALLOWED_HOSTS="127.0.0.1", AGENT_RATE="100000/minute", LOG_LEVEL="WARNING")
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "aethir_web.settings"
    t0 = time.perf_counter()
    tokens = build(args.nodes)
    print(f"built {args.nodes:,} nodes with agent tokens in {time.perf_counter() - t0:.1f}s (SQLite, {var})")
    proc, url = start_server(env)
    try:
        project = asyncio.run(drive(url, "/api/agent/heartbeats/", tokens, args.batch, args.concurrency))
        baseline = asyncio.run(drive(url, "/healthz", tokens, args.batch, args.concurrency))
    finally:
        proc.terminate()
        proc.wait()
    print(f"one Daphne process, {args.concurrency} concurrent clients, {args.batch} samples per batch, one batch per node")
    for name, r in (("agent heartbeat API", project), ("minimal Django view", baseline)):
        print(
            f"  {name:22s} {r['samples_per_s']:9,.0f} samples/s  {r['requests_per_s']:7,.0f} req/s  "
            f"p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}"
        )
    print(f"  overhead of the project's own code: {baseline['requests_per_s'] / project['requests_per_s']:.2f}x the minimal view's time per request")


if __name__ == "__main__":
    main()

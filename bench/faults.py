"""Fault drills: kill the parts of a running network under load, then prove
nothing acknowledged was lost.

Builds a network as ``bench/load.py`` does, then for each drill starts the
site afresh (``manage.py serve`` workers and the scheduler), real agent
processes (``run_provider_agent`` for a few nodes, ``run_checker`` for a few
checkers) and the load of ``bench/load.py``, and while the load runs:

* ``web``: SIGKILLs the web server (supervisor and every worker) and starts it
  again two seconds later;
* ``checker``: SIGKILLs a checker agent early in an epoch and starts it again
  with the same key; it sits out the epoch it saw only in part, and its
  signed reports for the next epoch must all land, once each;
* ``redis``: SIGKILLs Redis (a ``redis-server`` of the drill's own) and starts
  it again; needs the PostgreSQL + Redis setup (``--database-url``);
* ``settle``: starts ``settle_epoch`` on a finished epoch, SIGKILLs it in the
  middle of the epoch's transaction (after the emission step), checks that
  nothing of that epoch was written, and runs it again;
* ``hostile-provider``: a small network of its own (SQLite, 20 s epochs,
  real ``run_checker`` processes for every checker, real provider agents
  for the honest nodes) plus nodes whose health endpoint attacks the
  checkers: ``[]``, garbage bytes, a 50 MB body, one byte a second, a
  redirect to the cloud metadata address. Every epoch, every checker must
  report, every honest node must get a consensus and every hostile node
  must be judged not answering. It prints those figures per epoch.

After each drill: every write the server acknowledged is in the database,
``verify_ledger`` passes, and the agents came back on their own (heartbeats
and reports that arrived after the fault). Prints the load figures with the
outage window, and exits non-zero if any check fails.

    python bench/faults.py [--drill web --drill checker ...] [--duration 60]
    python bench/faults.py --database-url postgres://postgres@127.0.0.1:5432/aethir_faults --workers 2
"""

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load  # noqa: E402  (bench/load.py: the network, the site, the people, the audit)

DRILLS = ("web", "checker", "redis", "settle", "hostile-provider")
ROOT = load.ROOT


class Redis:
    """A redis-server of the drill's own, so killing it disturbs nothing else."""

    def __init__(self, var: Path):
        self.port = load.free_port()
        self.var = var
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> "Redis":
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=open(self.var / "redis.log", "a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for _ in range(100):
            try:
                with load.socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise SystemExit("redis-server did not start")

    def kill(self) -> None:
        load.Site.kill(self.process)


class Agents:
    """Real agent processes: provider agents serving a health endpoint for a
    few nodes, and checker agents with their key files."""

    def __init__(
        self, site: load.Site, var: Path, nodes: list[tuple[int, str]], checkers: list[tuple[int, str]], keys: Path
    ):
        self.site, self.var, self.keys = site, var, keys
        self.nodes, self.checkers = nodes, checkers
        self.providers, self.checker_procs = {}, {}

    def _spawn(self, name, *args):
        log = open(self.var / f"{name}.log", "a")
        return subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.site.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start(self) -> "Agents":
        for node_id, token, port in self.nodes:
            self.providers[node_id] = self._spawn(
                f"provider-{node_id}",
                "run_provider_agent",
                "--api-url",
                self.site.url,
                "--token",
                token,
                "--port",
                str(port),
                "--sample-every",
                "1",
                "--post-every",
                "2",
                "--no-nvml",
            )
        for checker_id, _ in self.checkers:
            self.start_checker(checker_id)
        return self

    def start_checker(self, checker_id: int) -> None:
        token = dict(self.checkers)[checker_id]
        self.checker_procs[checker_id] = self._spawn(
            f"checker-{checker_id}",
            "run_checker",
            "--api-url",
            self.site.url,
            "--token",
            token,
            "--key",
            str(self.keys / f"checker-{checker_id}.pem"),
            "--probe-every",
            "3",
            # The drill's nodes listen on loopback, which probes may not reach unless allowed.
            "--allow-net",
            "127.0.0.0/8",
        )

    def stop(self) -> None:
        for p in [*self.providers.values(), *self.checker_procs.values()]:
            load.Site.kill(p, signal.SIGINT)


def prepare_agents(network: load.Network, n_nodes: int = 3, n_checkers: int = 3):
    """Point a few nodes at real provider agents and give a few checkers
    agent tokens. Runs in this process (Django is set up by ``load.build``)."""
    from apps.core.models import AgentToken, CheckerNode, GpuNode

    nodes = []
    for node_id, token in network.tokens[:n_nodes]:
        port = load.free_port()
        GpuNode.objects.filter(pk=node_id).update(endpoint=f"http://127.0.0.1:{port}/health")
        nodes.append((node_id, token, port))
    checkers = []
    for checker in CheckerNode.objects.filter(pk__in=network.checkers).order_by("pk")[:n_checkers]:
        _, raw = AgentToken.issue(checker=checker)
        checkers.append((checker.pk, raw))
    return nodes, checkers


def now() -> datetime:
    return datetime.now(UTC)


# --- the drills: each runs in a thread beside the load and returns its checks ----------------


def drill_web(ctx) -> list[str]:
    time.sleep(ctx.duration / 3)
    ctx.mark("web server killed")
    load.Site.kill(ctx.site.web)
    time.sleep(2)
    ctx.site.start_web()
    restarted = now()
    ctx.mark("web server back")
    time.sleep(ctx.duration / 3)
    return [*ctx.agents_came_back(after=restarted)]


def drill_checker(ctx) -> list[str]:
    from apps.core import epochs

    checker_id = ctx.checkers[0][0]
    # Early in an epoch, with most of it still to observe.
    current = epochs.current()
    if (now() - current.start).total_seconds() > (current.end - current.start).total_seconds() / 4:
        time.sleep(max(0.0, (current.end - now()).total_seconds()) + 2)
        current = epochs.current()
    epoch, end = current.number, current.end
    time.sleep(3)
    ctx.mark(f"checker {checker_id} killed in epoch {epoch}")
    load.Site.kill(ctx.agents.checker_procs[checker_id])
    time.sleep(2)
    ctx.agents.start_checker(checker_id)
    restarted = now()
    ctx.mark(f"checker {checker_id} back")
    # Restarted mid-epoch, it saw only part of that epoch and sits it out (a
    # partial report risks a slash); from the next epoch on it reports in full.
    nxt = epoch + 1
    ctx.wait_until(
        lambda: ctx.reports(checker_id, nxt) >= ctx.assigned(checker_id, nxt) > 0,
        timeout=(end - now()).total_seconds() + (end - current.start).total_seconds() + 45,
    )
    problems = []
    got, wanted = ctx.reports(checker_id, nxt), ctx.assigned(checker_id, nxt)
    if got != wanted or not wanted:
        problems.append(f"checker {checker_id}: {got} reports for epoch {nxt}, {wanted} assignments")
    partial = ctx.reports(checker_id, epoch)
    if partial:
        problems.append(f"checker {checker_id} reported {partial} nodes of epoch {epoch}, which it saw only in part")
    ctx.mark(f"checker {checker_id}: sat out epoch {epoch}, {got} of {wanted} reports for epoch {nxt}")
    return problems + ctx.agents_came_back(after=restarted, reports=False)


def drill_redis(ctx) -> list[str]:
    time.sleep(ctx.duration / 3)
    ctx.mark("redis killed")
    ctx.redis.kill()
    time.sleep(3)
    ctx.redis.start()
    restarted = now()
    ctx.mark("redis back")
    problems = ctx.agents_came_back(after=restarted)
    problems += ctx.live_push_arrives(after=restarted)
    return problems


def drill_settle(ctx) -> list[str]:
    from apps.core.models import LedgerTransaction, TxKind
    from apps.settlement.models import EpochSettlement
    from apps.settlement.services import due_epochs

    ctx.wait_until(lambda: bool(due_epochs()), timeout=200)
    due = due_epochs()
    if not due:
        return ["no epoch became due for settlement"]
    epoch = due[0]

    def community_shares() -> int:  # one posting per settled epoch
        return LedgerTransaction.objects.filter(kind=TxKind.EMISSION, meta__epoch=epoch, meta__part="community").count()

    log = ctx.var / "settle-killed.log"
    # A settler that holds its open transaction after paying the emission (a
    # demo-only command: settlement itself reads no drill setting).
    settler = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "settle_epoch_with_pause",
            "--epoch",
            str(epoch),
            "--pause-after",
            "emission",
            "--pause-seconds",
            "120",
        ],
        env=ctx.site.env,
        cwd=ROOT,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    ctx.wait_until(lambda: "pausing after step emission" in log.read_text(), timeout=120)
    time.sleep(1)
    ctx.mark(f"settlement of epoch {epoch} killed mid-transaction")
    load.Site.kill(settler)
    problems = []
    if EpochSettlement.objects.filter(epoch=epoch).exists():
        problems.append(f"epoch {epoch} has a settlement row after the settler was killed")
    if community_shares():
        problems.append(f"the killed settlement of epoch {epoch} left emission postings behind")
    rerun = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "settle_epoch", "--epoch", str(epoch)],
        env=ctx.site.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    ctx.mark(f"settlement of epoch {epoch} run again: exit {rerun.returncode}")
    if rerun.returncode != 0:
        problems.append(f"re-running settle_epoch failed: {rerun.stdout[-300:]} {rerun.stderr[-300:]}")
    if EpochSettlement.objects.filter(epoch=epoch).count() != 1:
        problems.append(f"epoch {epoch} is not settled exactly once")
    if community_shares() != 1:
        problems.append(f"epoch {epoch} paid its emission {community_shares()} times")
    return problems


class Context:
    def __init__(self, site, var, network, agents, checkers, duration, redis=None):
        self.site, self.var, self.network, self.agents = site, var, network, agents
        self.checkers, self.duration, self.redis = checkers, duration, redis
        self.started = time.monotonic()
        self.marks = []

    def mark(self, what: str) -> None:
        self.marks.append((time.monotonic() - self.started, what))
        print(f"  {time.monotonic() - self.started:6.1f}s  {what}", flush=True)

    @staticmethod
    def wait_until(condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(1)
        return condition()

    @staticmethod
    def reports(checker_id: int, epoch: int) -> int:
        from apps.monitoring.models import CheckerReport

        return CheckerReport.objects.filter(checker_id=checker_id, epoch=epoch).count()

    @staticmethod
    def assigned(checker_id: int, epoch: int) -> int:
        from apps.monitoring.models import Assignment

        return Assignment.objects.filter(checker_id=checker_id, epoch=epoch).count()

    def agents_came_back(self, after: datetime, reports: bool = True) -> list[str]:
        """Each provider agent posted telemetry sampled after ``after``, and
        (when ``reports``) each checker agent submitted a report after it."""
        from apps.monitoring.models import CheckerReport, Heartbeat

        problems = []
        for node_id, _, _ in self.agents.nodes:
            ok = self.wait_until(
                lambda node_id=node_id: Heartbeat.objects.filter(node_id=node_id, at__gt=after).exists(), timeout=60
            )
            if not ok:
                problems.append(f"provider agent of node {node_id} sent nothing after the fault")
        if reports:
            for checker_id, _ in self.checkers:
                ok = self.wait_until(
                    lambda checker_id=checker_id: CheckerReport.objects.filter(
                        checker_id=checker_id, submitted_at__gt=after
                    ).exists(),
                    timeout=150,
                )
                if not ok:
                    problems.append(f"checker agent {checker_id} reported nothing after the fault")
        return problems

    def live_push_arrives(self, after: datetime) -> list[str]:
        """A browser's WebSocket (reconnecting as htmx's does) gets a live
        update for a node page after the fault."""
        import aiohttp

        node_id = self.agents.nodes[0][0]
        url = self.site.url.replace("http://", "ws://") + f"/ws/monitoring/nodes/{node_id}/"

        async def watch() -> bool:
            deadline = time.monotonic() + 30
            async with aiohttp.ClientSession() as session:
                while time.monotonic() < deadline:
                    try:
                        async with session.ws_connect(
                            url,
                            headers={"Origin": self.site.url, "X-Forwarded-Proto": "https"},
                            timeout=aiohttp.ClientWSTimeout(ws_close=5),
                        ) as ws:
                            while time.monotonic() < deadline:
                                msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                                if msg.type == aiohttp.WSMsgType.TEXT and "last-heartbeat" in msg.data:
                                    return True
                                if msg.type in (
                                    aiohttp.WSMsgType.CLOSED,
                                    aiohttp.WSMsgType.ERROR,
                                    aiohttp.WSMsgType.CLOSE,
                                ):
                                    break
                    except (TimeoutError, aiohttp.ClientError):
                        pass
                    await asyncio.sleep(1)
            return False

        return [] if asyncio.run(watch()) else [f"no live update reached the node {node_id} page after the fault"]


# --- hostile providers: a network of its own, where every checker is a real agent ------------

HOSTILE_EPOCH = 20  # seconds
HOSTILE_KINDS = ("json-list", "garbage", "huge", "drip", "redirect")

HOSTILE_SETUP = """
import json
from apps.core import ledger, parameters
from apps.core.models import AgentToken, CheckerNode, GpuModel, ModuleAccount, Region, TxKind
from apps.core.models import GpuNode
from apps.marketplace.onboarding import NodeSpec, register_node, required_collateral
from apps.core.amounts import ath
from django.contrib.auth.models import User
parameters.ensure_defaults()
ledger.genesis()
parameters.apply({"epoch_seconds": EPOCH}, effective_epoch=0, source="hostile-provider drill", by_governance=False)
model, region = GpuModel.objects.get(slug="h100-80gb"), Region.objects.get(code="eu-west")
faucet = ledger.module_account(ModuleAccount.FAUCET)
out = {"nodes": [], "checkers": []}
for i, endpoint in enumerate(ENDPOINTS):
    provider = User.objects.create_user(f"provider-{i}", password="x-long-password-1")
    ledger.transfer(faucet, provider.wallet, required_collateral(model, 1), kind=TxKind.FAUCET)
    node, token = register_node(provider, NodeSpec(name=f"node-{i}", gpu_model=model, gpu_count=1, vcpu=32, ram_gb=256,
        region=region, bandwidth_mbps=10000, price_per_gpu_hour=ath(2), endpoint=endpoint))
    out["nodes"].append([node.pk, token])
operator = User.objects.create_user("operator", password="x-long-password-1")
for i in range(CHECKERS):
    checker = CheckerNode.objects.create(operator=operator, name=f"checker-{i}", status="active")
    out["checkers"].append([checker.pk, AgentToken.issue(checker=checker)[1]])
print(json.dumps(out))
"""

HOSTILE_FIGURES = """
import json
from apps.core import epochs
from apps.monitoring.models import CheckerReport, EpochConsensus, NodeEpoch
out = {"current": epochs.current_number(), "epochs": {}}
for e in EpochConsensus.objects.order_by("epoch").values_list("epoch", flat=True):
    rows = {n.node_id: n for n in NodeEpoch.objects.filter(epoch=e)}
    reports = CheckerReport.objects.filter(epoch=e)
    out["epochs"][e] = {
        "checkers": reports.values("checker").distinct().count(), "reports": reports.count(),
        "incorrect": reports.filter(correct=False).count(),
        "honest_ok": sum(1 for n in HONEST if n in rows and rows[n].valid and rows[n].task_ppm),
        "hostile_down": sum(1 for n in HOSTILE if n in rows and rows[n].valid and rows[n].task_ppm == 0),
    }
print(json.dumps(out))
"""


def hostile_server(ports: dict[str, int], sent: dict, stop: threading.Event) -> threading.Thread:
    """Health endpoints that attack checkers, one port per kind, served from
    a thread of this process until ``stop`` is set."""
    from aiohttp import web

    async def json_list(request):
        return web.json_response([])

    async def garbage(request):
        return web.Response(body=os.urandom(512), content_type="application/json")

    async def stream(request, kind: str, chunks, pause: float):
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            for chunk in chunks:
                await response.write(chunk)
                sent[kind] = sent.get(kind, 0) + len(chunk)
                if chunk is chunks[0]:
                    sent[kind + " requests"] = sent.get(kind + " requests", 0) + 1
                if pause:
                    await asyncio.sleep(pause)
        except (ConnectionError, RuntimeError):  # the checker hung up, as it should
            pass
        return response

    async def huge(request):  # a valid health object padded to 50 MB
        head = [b'{"gpu_name": "NVIDIA H100 80GB", "gpu_count": 1, "pad": "']
        return await stream(request, "huge", head + [b"x" * 2**20] * 50 + [b'"}'], 0)

    async def drip(request):  # one byte a second
        return await stream(
            request, "drip", [bytes([b]) for b in b'{"gpu_name": "NVIDIA H100 80GB", "gpu_count": 1}'], 1
        )

    async def redirect(request):
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    handlers = {"json-list": json_list, "garbage": garbage, "huge": huge, "drip": drip, "redirect": redirect}

    async def main():
        runners = []
        for kind, port in ports.items():
            app = web.Application()
            app.router.add_get("/health", handlers[kind])
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
        while not stop.is_set():
            await asyncio.sleep(0.2)
        for runner in runners:
            await runner.cleanup()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    return thread


def run_hostile(args, var: Path) -> list[str]:
    """The ``hostile-provider`` drill (see the module's docstring)."""
    import json

    drill_var = var / "hostile-provider"
    drill_var.mkdir()
    base = argparse.Namespace(database_url="", redis_url="")
    env = dict(load.environment(base, drill_var), SECURE_SSL_REDIRECT="0")
    n_honest, n_checkers, epochs_wanted = args.hostile_honest, args.hostile_checkers, args.hostile_epochs

    def manage(*a) -> str:
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *a], env=env, cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode:
            raise SystemExit(f"manage.py {a[0]} failed: {done.stderr[-2000:]}")
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""

    honest_ports = [load.free_port() for _ in range(n_honest)]
    hostile_ports = {kind: load.free_port() for kind in HOSTILE_KINDS}
    endpoints = [f"http://127.0.0.1:{p}/health" for p in [*honest_ports, *hostile_ports.values()]]
    print(
        f"== drill hostile-provider: {n_honest} honest nodes, {len(HOSTILE_KINDS)} hostile ({', '.join(HOSTILE_KINDS)}), "
        f"{n_checkers} checker agents, {HOSTILE_EPOCH} s epochs",
        flush=True,
    )
    manage("migrate", "--noinput", "-v0")
    setup = HOSTILE_SETUP.replace("EPOCH", str(HOSTILE_EPOCH)).replace("CHECKERS", str(n_checkers))
    made = json.loads(manage("shell", "-c", setup.replace("ENDPOINTS", json.dumps(endpoints))))
    honest = [n for n, _ in made["nodes"][:n_honest]]
    hostile = [n for n, _ in made["nodes"][n_honest:]]

    stop, sent = threading.Event(), {}
    server = hostile_server(hostile_ports, sent, stop)
    site = load.Site(env, 1, drill_var).start()
    agents = Agents(
        site,
        drill_var,
        [(n, t, p) for (n, t), p in zip(made["nodes"], honest_ports, strict=True)],
        [tuple(c) for c in made["checkers"]],
        keys=drill_var,
    ).start()
    started = time.monotonic()
    problems, seen, peak_kib = [], {}, 0
    figures = HOSTILE_FIGURES.replace("HONEST", repr(set(honest))).replace("HOSTILE", repr(set(hostile)))
    # The epoch the agents start in they see only in part (they sit it out);
    # the epochs after it are the ones judged.
    first_full = json.loads(manage("shell", "-c", figures))["current"] + 1
    print(
        f"{'epoch':>6} {'checkers':>9} {'reports':>8} {'incorrect':>10} {'honest with consensus':>22} "
        f"{'hostile judged down':>20}",
        flush=True,
    )
    try:
        # The agents sit out the epoch they start in; then each epoch is settled
        # (consensus computed) a grace after it ends.
        deadline = started + (epochs_wanted + 2) * HOSTILE_EPOCH + 30
        while time.monotonic() < deadline and len(seen) < epochs_wanted:
            time.sleep(2)
            for key in (f"/proc/{p.pid}/status" for p in agents.checker_procs.values()):
                try:  # the checkers' peak memory: what a 50 MB answer costs them
                    peak_kib = max(
                        peak_kib, int(next(line.split()[1] for line in open(key) if line.startswith("VmHWM")))
                    )
                except (OSError, StopIteration):
                    pass
            now_figures = json.loads(manage("shell", "-c", figures))["epochs"]
            for epoch, f in sorted(now_figures.items(), key=lambda kv: int(kv[0])):
                if int(epoch) < first_full or epoch in seen:
                    continue
                seen[epoch] = f
                print(
                    f"{epoch:>6} {f['checkers']:>6}/{n_checkers:<2} {f['reports']:>8} {f['incorrect']:>10} "
                    f"{f['honest_ok']:>18}/{n_honest:<3} {f['hostile_down']:>16}/{len(hostile):<3}",
                    flush=True,
                )
        for name, proc in agents.checker_procs.items():
            if proc.poll() is not None:
                problems.append(f"checker agent {name} exited with {proc.returncode}")
    finally:
        agents.stop()
        site.stop()
        stop.set()
        server.join(timeout=5)
    judged = [f for _, f in sorted(seen.items(), key=lambda kv: int(kv[0]))]
    if len(judged) < epochs_wanted:
        problems.append(f"only {len(judged)} full epochs reached consensus in time ({epochs_wanted} wanted)")
    for i, f in enumerate(judged, 1):
        if f["checkers"] < n_checkers:
            problems.append(f"full epoch {i}: {f['checkers']} of {n_checkers} checkers reported")
        if f["honest_ok"] < n_honest:
            problems.append(f"full epoch {i}: {f['honest_ok']} of {n_honest} honest nodes had a consensus")
        if f["hostile_down"] < len(hostile):
            problems.append(f"full epoch {i}: {f['hostile_down']} of {len(hostile)} hostile nodes judged down")
    for log_file in drill_var.glob("checker-*.log"):
        text = log_file.read_text()
        if "Traceback" in text:
            problems.append(f"{log_file.name} has a traceback")
    asked = max(1, sent.get("huge requests", 0))
    print(
        f"the 50 MB node was asked {asked} times and got {sent.get('huge', 0) / asked / 2**20:.1f} MiB a time into "
        f"socket buffers before the checker hung up (it reads 64 KiB); checker agents' peak memory "
        f"{peak_kib / 1024:.0f} MiB; the drip node was asked {sent.get('drip requests', 0)} times"
    )
    print("drill hostile-provider: " + ("PASSED" if not problems else "FAILED"))
    for p in problems:
        print("  - " + p)
    return problems


def run_drill(name: str, args, env: dict, var: Path, network: load.Network, nodes, checkers) -> list[str]:
    drill_var = var / name
    drill_var.mkdir()
    redis = None
    if name == "redis":
        redis = Redis(drill_var).start()
        env = dict(env, REDIS_URL=redis.url)
    site = load.Site(env, args.workers, drill_var, scheduler=(name != "settle")).start()
    # Keys outlive a drill, as a checker's key file outlives its process.
    agents = Agents(site, drill_var, nodes, checkers, keys=var).start()
    ctx = Context(site, drill_var, network, agents, checkers, args.duration, redis)
    stats = load.Stats()
    result = {}

    def fault():
        try:
            result["problems"] = globals()[f"drill_{name}"](ctx)
        except Exception as exc:  # noqa: BLE001 - a drill that breaks is a failed drill, reported
            result["problems"] = [f"the drill itself failed: {exc!r}"]

    print(f"== drill {name}: {args.duration:.0f}s of load, {args.workers} worker(s)", flush=True)
    thread = threading.Thread(target=fault)
    thread.start()
    counts = {
        "browsers": args.browsers,
        "renters": args.renters,
        "delegators": args.delegators,
        "voters": args.voters,
        "agents": len(network.tokens),
    }
    started = time.monotonic()
    try:
        asyncio.run(
            load.Load(site.url, network, stats, post_every=args.post_every, samples=3, agent_limit=64).run(
                args.duration, counts
            )
        )
        thread.join()
    finally:
        elapsed = time.monotonic() - started
        agents.stop()
        site.stop()
        if redis:
            redis.kill()
    load.report(stats, elapsed)
    problems = result.get("problems", ["the drill did not finish"]) + load.audit(stats)
    print(f"drill {name}: " + ("PASSED" if not problems else "FAILED"))
    for p in problems:
        print("  - " + p)
    return problems


def main():
    p = load.parser()
    p.description = __doc__
    p.set_defaults(nodes=2000, browsers=10, renters=5, delegators=5, voters=5)
    p.add_argument("--drill", action="append", choices=DRILLS, help="run only these drills (default: all)")
    p.add_argument("--hostile-honest", type=int, default=4, help="hostile-provider: honest nodes")
    p.add_argument("--hostile-checkers", type=int, default=4, help="hostile-provider: checker agents")
    p.add_argument("--hostile-epochs", type=int, default=3, help="hostile-provider: full epochs to watch")
    args = p.parse_args()
    drills = args.drill or list(DRILLS)
    if "redis" in drills and not args.database_url:
        print("skipping the redis drill: it needs the PostgreSQL + Redis setup (--database-url)")
        drills.remove("redis")
    if "redis" in drills and not shutil.which("redis-server"):
        print("skipping the redis drill: redis-server is not installed")
        drills.remove("redis")
    var = Path(tempfile.mkdtemp(prefix="aethir-faults-"))
    failed, ran = {}, list(drills)
    if "hostile-provider" in drills:
        # A network of its own, in its own database, run in child processes
        # only: it needs every checker to be a real agent.
        drills.remove("hostile-provider")
        if problems := run_hostile(args, var):
            failed["hostile-provider"] = problems
        if not drills:
            print("== hostile-provider: " + ("FAILED" if failed else "passed"))
            print(f"logs and database: {var}")
            sys.exit(1 if failed else 0)
    env = load.environment(args, var)
    # Real agents talk plain HTTP to the local server (production has TLS at the proxy).
    env["SECURE_SSL_REDIRECT"] = "0"
    redis = None
    if args.database_url and not args.redis_url and shutil.which("redis-server"):
        # PostgreSQL goes with Redis (the production pair), here one of the run's own.
        redis = Redis(var).start()
        env["REDIS_URL"] = redis.url
    os.environ.update(env)
    print(f"Building the network ({args.nodes:,} nodes) ...", flush=True)
    counts = {"browsers": args.browsers, "renters": args.renters, "delegators": args.delegators, "voters": args.voters}
    network = load.build(args.nodes, counts)
    nodes, checkers = prepare_agents(network)
    from django.db import connections

    connections.close_all()
    try:
        for name in drills:
            problems = run_drill(name, args, env, var, network, nodes, checkers)
            if problems:
                failed[name] = problems
    finally:
        if redis:
            redis.kill()
    print("== " + ", ".join(f"{d}: {'FAILED' if d in failed else 'passed'}" for d in ran))
    print(f"logs and database: {var}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

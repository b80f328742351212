"""Workloads on a real engine: how long a renter waits from the rent request
to a running container, and what the provider agent's reconcile costs.

Everything is real: the dashboard (``manage.py serve``, one Daphne worker,
on a free port and a fresh SQLite database of this run's own), the provider
agent's code (``ProviderAgent`` with ``EngineSettings``, as
``run_provider_agent`` builds it: a reconcile every 2 s, a log tail at most
every 5 s, telemetry every 5 s posted every 15 s), and the container engine
(``scripts/container-engine``: Podman's Docker-compatible service, runtime
runc) running the offline template ``web-demo`` (``localhost/aethir-web:1``,
already present: no pull). Renters rent through the public API
(``POST /api/marketplace/rentals/`` with ``"template": "web-demo"``) and end
through it.

Why two phases. In this version a rental takes a whole node, one active
rental per node, and an agent serves one node (one token is one node), so
one agent can never hold 50 leases at once. "50 rentals launched on one
agent" is measured both ways it can honestly mean:

* **one node**: one agent, ``--rentals`` rentals one after another on its
  node: rent, wait for "running", end, wait for "removed", rent again. Each
  rent comes after a random pause of 0 to 2 reconcile intervals, so
  requests land at a random point of the agent's polling cycle (a rent made
  just after the agent's last pass waits almost a whole interval, one made
  just before it almost nothing). This is the latency a renter sees.
* **one host**: ``--rentals`` nodes served by one agent process (one
  ``ProviderAgent`` per node token on one event loop, as one machine
  carved into single-GPU nodes would be), all rented back to back in a burst,
  then left running, then ended. This gives the reconcile cost with that
  many leases on one process and one engine, and the latency under a burst
  of concurrent starts.

The agents run in a child process of their own (this script with
``--agent-host``): its CPU time (``time.process_time``: every thread, the
engine calls' pool included) and the reconcilers' counters (``passes``,
``engine_calls``) are read at the edges of each window. A pass's wall time
(``reconcile_once``) and each container's create-and-start are timed by
wrapping those methods in the child; the agent's code is not changed. The
dashboard's CPU is that of the ``serve`` process group, the engine's that of
Podman's service process (shared: other clients of the engine count too; not
its conmon and runc children).

"Running" is the moment the dashboard recorded the agent's "running" report
(the state event the rental page is pushed live), taken from the database,
on the same clock as the client's request time. The latency is split into:
the rent request itself; the wait until the agent's poll of its leases saw
it (``_start`` began); image check, create and start on the engine; and the
report (the next pass lists the container running and posts it).

Every container the agents made carries ``aethir.node=<node>`` with node ids
drawn at random from a range no test or demo uses; at the end (and on
Ctrl-C) every container with one of this run's node labels is removed, and
the run fails if any is left.

    python bench/workloads.py [--rentals 50] [--only one-node|one-host] [--window 20] [--each] [--keep]
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import Person, Site, environment  # noqa: E402  (bench/load.py)

TEMPLATE = "web-demo"
IMAGE = "localhost/aethir-web:1"
NODE_LABEL = "aethir.node"
# Node ids above what tests draw (up to 2e9) and far above any demo's: this
# run's label filter finds only its own containers on a shared engine.
NODE_IDS = (2_000_000_001, 2_140_000_000)
RECONCILE_EVERY = 2.0  # run_provider_agent's defaults
LOG_EVERY = 5.0
AIM_P95 = 3.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the agent host (the child process) -------------------------------------------------


def agent_host(config_path: str) -> None:
    """Run one ProviderAgent per token in this process until SIGTERM. Answers
    each ``snap`` line on stdin with one JSON line of counters on stdout."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s agent-host %(levelname)s %(name)s %(message)s")
    from apps.monitoring.agents import workloads as wl
    from apps.monitoring.agents.provider import ProviderAgent

    cfg = json.loads(Path(config_path).read_text())
    lock = threading.Lock()
    timing = {"pass_wall": [], "starts": []}  # since the last snapshot

    original_pass = wl.WorkloadReconciler.reconcile_once
    original_start = wl.WorkloadReconciler._start
    original_create = wl.WorkloadReconciler._create_and_start

    async def reconcile_once(self):
        t = time.perf_counter()
        try:
            await original_pass(self)
        finally:
            with lock:
                timing["pass_wall"].append(time.perf_counter() - t)

    started: dict[tuple[int, int], float] = {}  # (node, lease) -> when create-and-start returned

    async def start(self, lease):
        seen = time.time()
        await original_start(self, lease)
        done = started.pop((self.node_id, lease.lease), None)
        with lock:
            timing["starts"].append({"lease": lease.lease, "seen": seen, "started": done})

    def create_and_start(self, lease):
        try:
            return original_create(self, lease)
        finally:
            started[(self.node_id, lease.lease)] = time.time()

    wl.WorkloadReconciler.reconcile_once = reconcile_once
    wl.WorkloadReconciler._start = start
    wl.WorkloadReconciler._create_and_start = create_and_start

    agents = [
        ProviderAgent(
            api_url=cfg["api_url"],
            token=token,
            port=0,
            seed=i + 1,
            allow_nvml=False,
            engine=wl.EngineSettings(url=cfg["engine"]),
            reconcile_every=cfg["reconcile_every"],
            log_every=cfg["log_every"],
        )
        for i, token in enumerate(cfg["tokens"])
    ]

    def snapshot() -> dict:
        rec = [a.workloads for a in agents if a.workloads is not None]
        with lock:
            pass_wall, timing["pass_wall"] = timing["pass_wall"], []
            starts, timing["starts"] = timing["starts"], []
        states = {}
        for r in rec:
            for status in list(r.current.values()):
                states[status.state] = states.get(status.state, 0) + 1
        return {
            "cpu": time.process_time(),
            "wall": time.monotonic(),
            "reconcilers": len(rec),
            "passes": sum(r.passes for r in rec),
            "engine_calls": sum(r.engine_calls for r in rec),
            "posts": sum(r.posts for r in rec),
            "engine_ok": sum(r.engine == "ok" for r in rec),
            "states": states,
            "pass_wall": pass_wall,
            "starts": starts,
        }

    def answer() -> None:
        for line in sys.stdin:
            if line.strip() == "snap":
                sys.stdout.write(json.dumps(snapshot()) + "\n")
                sys.stdout.flush()

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await asyncio.gather(*(a.identify() for a in agents))
        await asyncio.gather(*(a.serve() for a in agents))
        tasks = [asyncio.create_task(a.run(stop)) for a in agents]
        threading.Thread(target=answer, daemon=True).start()
        sys.stdout.write(json.dumps({"ready": len(agents)}) + "\n")
        sys.stdout.flush()
        await stop.wait()
        await asyncio.gather(*tasks, return_exceptions=True)
        for a in agents:
            await a.close()

    asyncio.run(main())


class AgentHost:
    """The child process above, seen from the bench."""

    def __init__(self, name: str, tokens: list[str], api_url: str, engine: str, var: Path):
        self.name, self.var = name, var
        self.config = var / f"{name}.json"
        self.config.write_text(
            json.dumps(
                {
                    "api_url": api_url,
                    "engine": engine,
                    "tokens": tokens,
                    "reconcile_every": RECONCILE_EVERY,
                    "log_every": LOG_EVERY,
                }
            )
        )
        self.process = None

    def start(self, timeout: float = 120) -> "AgentHost":
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--agent-host", str(self.config)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.var / f"{self.name}.log", "a"),
            text=True,
            start_new_session=True,
        )
        line = self._readline(timeout)
        if "ready" not in json.loads(line):
            raise RuntimeError(f"agent host said {line!r}")
        return self

    def _readline(self, timeout: float) -> str:
        result = []
        reader = threading.Thread(target=lambda: result.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not result or not result[0]:
            raise RuntimeError(f"the agent host did not answer; see {self.name}.log in the run's folder")
        return result[0]

    def snap(self) -> dict:
        self.process.stdin.write("snap\n")
        self.process.stdin.flush()
        return json.loads(self._readline(30))

    def wait_reconciling(self, n: int, timeout: float = 120) -> None:
        """Until every agent has made a pass with the engine answering."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.snap()
            if s["reconcilers"] == n and s["engine_ok"] == n and s["passes"] >= n:
                return
            time.sleep(0.3)
        raise RuntimeError(f"the agents were not all reconciling after {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# --- CPU of the other processes, and of the machine -----------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from the state (field 3) on


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes in group ``pgid``."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _stat(int(entry))
            if f and int(f[2]) == pgid:
                total += int(f[11]) + int(f[12])
    return total / CLK_TCK


def process_cpu(pid: int | None) -> float | None:
    f = _stat(pid) if pid else None
    return (int(f[11]) + int(f[12])) / CLK_TCK if f else None


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


def engine_pid() -> int | None:
    """Podman's service process as scripts/container-engine started it, if it did."""
    pid_file = ROOT / "var" / "container-engine" / "service.pid"
    try:
        pid = int(pid_file.read_text().strip())
        if b"service" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    except (OSError, ValueError):
        pass
    return None


class Meter:
    """Counters at the start of a window, and the figures of the window at its end."""

    def __init__(self, host: AgentHost, site: Site, engine: int | None):
        self.host, self.site, self.engine = host, site, engine

    def read(self) -> dict:
        return {
            "agent": self.host.snap(),
            "web": group_cpu(self.site.web.pid),
            "engine": process_cpu(self.engine),
            "machine": machine_cpu(),
            "bench": time.process_time(),
            "t": time.monotonic(),
        }

    @staticmethod
    def window(name: str, leases: str, a: dict, b: dict, pass_wall: list[float]) -> dict:
        passes = b["agent"]["passes"] - a["agent"]["passes"]
        seconds = b["t"] - a["t"]
        per = max(passes, 1)
        busy = b["machine"][0] - a["machine"][0]
        total = b["machine"][1] - a["machine"][1]
        agent_cpu = b["agent"]["cpu"] - a["agent"]["cpu"]
        web_cpu = b["web"] - a["web"]
        engine_cpu = None if a["engine"] is None or b["engine"] is None else b["engine"] - a["engine"]
        bench_cpu = b["bench"] - a["bench"]
        return {
            "name": name,
            "leases": leases,
            "seconds": seconds,
            "passes": passes,
            "agent_ms": 1000 * agent_cpu / per,
            "agent_core": agent_cpu / seconds,
            "calls": (b["agent"]["engine_calls"] - a["agent"]["engine_calls"]) / per,
            "posts": b["agent"]["posts"] - a["agent"]["posts"],
            "wall": (pct(pass_wall, 50), pct(pass_wall, 95)),
            "web_ms": 1000 * web_cpu / per,
            "engine_ms": None if engine_cpu is None else 1000 * engine_cpu / per,
            "machine": busy / total if total else 0.0,
            "others": max(0.0, busy - agent_cpu - web_cpu - (engine_cpu or 0) - bench_cpu) / seconds,
        }


# --- the dashboard side ----------------------------------------------------------------------


def build(n_nodes: int) -> tuple[list[tuple[int, str]], Person]:
    """Migrate, genesis, ``n_nodes`` online 1-GPU nodes with agent tokens (ids
    from NODE_IDS), a provider and a funded renter with a session."""
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import connections

    from apps.accounts.services import open_wallet
    from apps.core import ledger
    from apps.core.amounts import ath
    from apps.core.models import AgentToken, GpuNode, ModuleAccount, TxKind
    from bench.sandbox import random_nodes

    call_command("migrate", verbosity=0)
    call_command("genesis", verbosity=0)
    provider = User.objects.create(username="workload-provider")
    renter = User.objects.create(username="workload-renter")
    renter.set_unusable_password()
    renter.save()
    ledger.transfer(
        ledger.module_account(ModuleAccount.FAUCET),
        open_wallet(renter),
        ath(100_000),
        kind=TxKind.FAUCET,
        memo="workload bench funds",
    )
    rng = random.Random()
    first = rng.randrange(NODE_IDS[0], NODE_IDS[1] - n_nodes)
    nodes = random_nodes(
        random.Random(7),
        n_nodes,
        [provider],
        name="workload-{:03d}",
        prices=(2_000_000, 2_000_001),
        endpoint="http://127.0.0.1:9/health",
        status="online",
        health_score=1_000_000,
    )
    for i, node in enumerate(nodes):
        node.pk = first + i
        node.gpu_count, node.vcpu, node.ram_gb = 1, 2, 4
    GpuNode.objects.bulk_create(nodes)
    tokens = [(node.pk, AgentToken.issue(node=node)[1]) for node in nodes]

    store = SessionStore()
    store[SESSION_KEY] = str(renter.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = renter.get_session_auth_hash()
    store.set_expiry(24 * 3600)
    store.create()
    connections.close_all()
    return tokens, Person(renter.username, store.session_key)


def events(rental_ids) -> dict[int, dict[str, float]]:
    """The first time (epoch seconds) the dashboard recorded each workload state, per rental."""
    from django.db import connections

    from apps.marketplace.models import WorkloadEvent

    out: dict[int, dict[str, float]] = {}
    for rental, state, at in WorkloadEvent.objects.filter(rental_id__in=list(rental_ids)).values_list(
        "rental_id", "state", "at"
    ):
        out.setdefault(rental, {}).setdefault(state, at.timestamp())
    connections.close_all()
    return out


async def wait_for(rental_ids, state: str, timeout: float) -> dict[int, dict[str, float]]:
    """Until every rental has reached ``state`` (or failed, or exited), or the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        seen = await asyncio.to_thread(events, rental_ids)
        done = [r for r in rental_ids if {state, "failed", "exited"} & set(seen.get(r, {}))]
        if len(done) == len(rental_ids) or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.05)


class Renter:
    def __init__(self, base: str, person: Person, session):
        self.base, self.person, self.session = base, person, session

    async def _post(self, path: str, body: dict | None) -> tuple[int, dict]:
        async with self.session.post(self.base + path, json=body, headers=self.person.headers(self.base)) as r:
            data = await r.json(content_type=None)
            if r.status not in (200, 201):
                raise RuntimeError(f"POST {path} answered {r.status}: {str(data)[:300]}")
            return r.status, data

    async def rent(self, node_id: int) -> dict:
        sent = time.time()
        _, data = await self._post(
            "/api/marketplace/rentals/", {"node": node_id, "mode": "reserved", "template": TEMPLATE, "epochs": 60}
        )
        return {"id": data["id"], "node": node_id, "sent": sent, "answered": time.time()}

    async def end(self, rental: dict) -> None:
        rental["end_sent"] = time.time()
        await self._post(f"/api/marketplace/rentals/{rental['id']}/end/", None)


# --- the phases ---------------------------------------------------------------------------------


def breakdown(rentals: list[dict], seen: dict, starts: list[dict]) -> list[dict]:
    """Per rental: total, and its parts (see the module's doc). Missing parts are None."""
    by_lease = {s["lease"]: s for s in starts}
    rows = []
    for r in rentals:
        ev = seen.get(r["id"], {})
        running = ev.get("running")
        s = by_lease.get(r["id"])
        row = {
            "id": r["id"],
            "state": "running" if running else ",".join(sorted(ev)) or "no report",
            "total": running - r["sent"] if running else None,
            "request": r["answered"] - r["sent"],
            "poll": s["seen"] - r["answered"] if s else None,
            "engine": s["started"] - s["seen"] if s and s["started"] else None,
            "report": running - s["started"] if s and s["started"] and running else None,
            "removed": ev["removed"] - r["end_sent"] if "removed" in ev and "end_sent" in r else None,
        }
        rows.append(row)
    return rows


async def one_node(args, base, person, node, token, engine, var, site, epid) -> tuple[list[dict], list[dict]]:
    import aiohttp

    host = AgentHost("one-node-agent", [token], base, engine, var).start()
    try:
        host.wait_reconciling(1)
        meter = Meter(host, site, epid)
        rng = random.Random(13)
        rentals, starts, walls = [], [], []
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            renter = Renter(base, person, session)
            before = meter.read()
            for i in range(args.rentals):
                await asyncio.sleep(rng.uniform(0, 2 * RECONCILE_EVERY))
                rental = await renter.rent(node)
                rentals.append(rental)
                seen = await wait_for([rental["id"]], "running", args.timeout)
                await renter.end(rental)
                seen = await wait_for([rental["id"]], "removed", args.timeout)
                snap = host.snap()
                starts += snap["starts"]
                walls += snap["pass_wall"]
                ev = seen.get(rental["id"], {})
                took = ev["running"] - rental["sent"] if "running" in ev else None
                print(
                    f"  rental {i + 1:3d}/{args.rentals}: "
                    + (f"running after {took:.2f}s" if took is not None else f"NOT running ({', '.join(ev) or '-'})"),
                    flush=True,
                )
            after = meter.read()
        walls += after["agent"]["pass_wall"]
        starts += after["agent"]["starts"]
        seen = await asyncio.to_thread(events, [r["id"] for r in rentals])
        window = Meter.window("one node, rentals one after another", "0-1", before, after, walls)
        return breakdown(rentals, seen, starts), [window]
    finally:
        host.stop()


async def one_host(args, base, person, nodes, tokens, engine, var, site, epid) -> tuple[list[dict], list[dict]]:
    import aiohttp

    n = len(nodes)
    print(f"  starting one agent process for {n} nodes ...", flush=True)
    host = AgentHost("one-host-agents", tokens, base, engine, var).start()
    windows, starts = [], []
    try:
        host.wait_reconciling(n)
        meter = Meter(host, site, epid)
        await asyncio.sleep(2 * RECONCILE_EVERY)  # every agent past its first passes
        host.snap()
        a = meter.read()
        await asyncio.sleep(args.window)
        b = meter.read()
        windows.append(Meter.window(f"one host, {n} nodes idle", "0", a, b, b["agent"]["pass_wall"]))
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            renter = Renter(base, person, session)
            a = meter.read()
            rentals = []
            for node in nodes:  # back to back: each request as soon as the last one is answered
                rentals.append(await renter.rent(node))
            ids = [r["id"] for r in rentals]
            seen = await wait_for(ids, "running", args.timeout)
            b = meter.read()
            starts += b["agent"]["starts"]
            running = sum("running" in seen.get(i, {}) for i in ids)
            print(f"  {running}/{n} running {b['t'] - a['t']:.1f}s after the first rent request", flush=True)
            windows.append(Meter.window(f"one host, {n} launched in a burst", f"0-{n}", a, b, b["agent"]["pass_wall"]))
            await asyncio.sleep(LOG_EVERY)  # past the first log tails
            a = meter.read()
            await asyncio.sleep(args.window)
            b = meter.read()
            starts += a["agent"]["starts"] + b["agent"]["starts"]
            windows.append(Meter.window(f"one host, {n} running", str(running), a, b, b["agent"]["pass_wall"]))
            a = meter.read()
            for rental in rentals:
                await renter.end(rental)
            seen = await wait_for(ids, "removed", args.timeout + 30)
            b = meter.read()
            starts += a["agent"]["starts"] + b["agent"]["starts"]
            removed = sum("removed" in seen.get(i, {}) for i in ids)
            print(f"  {removed}/{n} removed {b['t'] - a['t']:.1f}s after the first end request", flush=True)
            windows.append(Meter.window(f"one host, {n} ended", f"{n}-0", a, b, b["agent"]["pass_wall"]))
        return breakdown(rentals, seen, starts), windows
    finally:
        host.stop()


# --- printing -------------------------------------------------------------------------------------


def pct(values: list, p: float):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def fmt(v, unit: str = "s", digits: int = 2) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}f}{unit}"


def print_latency(title: str, rows: list[dict], each: bool = False) -> None:
    ok = [r for r in rows if r["total"] is not None]
    print(f"\n{title}: {len(ok)}/{len(rows)} rentals running")
    head = f"  {'':27s} {'p50':>7s} {'p95':>7s} {'max':>7s}"
    print(head)
    for key, label in (
        ("total", "rent request -> running"),
        ("request", "  the rent request"),
        ("poll", "  until the agent's poll"),
        ("engine", "  image check+create+start"),
        ("report", "  until running recorded"),
        ("removed", "end request -> removed"),
    ):
        values = [r[key] for r in rows]
        print(f"  {label:27s} {fmt(pct(values, 50)):>7s} {fmt(pct(values, 95)):>7s} {fmt(pct(values, 100)):>7s}")
    if each:
        for r in rows:
            parts = ", ".join(f"{k} {fmt(r[k])}" for k in ("total", "request", "poll", "engine", "report", "removed"))
            print(f"    rental {r['id']}: {parts}")
    for r in rows:
        if r["total"] is None:
            print(f"  rental {r['id']}: {r['state']}")


def print_windows(windows: list[dict]) -> None:
    head = (
        f"{'window':38s} {'leases':>6s} {'secs':>5s} {'passes':>6s} {'agent CPU':>9s} {'engine':>6s} "
        f"{'pass wall':>11s} {'dashboard':>9s} {'engine svc':>10s} {'agent':>6s} {'machine':>7s} {'others':>6s}"
    )
    print()
    print(head)
    print(
        f"{'':38s} {'':>6s} {'':>5s} {'':>6s} {'ms/pass':>9s} {'calls':>6s} {'p50/p95 ms':>11s} "
        f"{'ms/pass':>9s} {'ms/pass':>10s} {'cores':>6s} {'busy':>7s} {'cores':>6s}"
    )
    print("-" * len(head))
    for w in windows:
        wall = "/".join("-" if v is None else f"{1000 * v:.0f}" for v in w["wall"])
        print(
            f"{w['name']:38s} {w['leases']:>6s} {w['seconds']:5.0f} {w['passes']:6d} {w['agent_ms']:9.2f} "
            f"{w['calls']:6.2f} {wall:>11s} {w['web_ms']:9.2f} {fmt(w['engine_ms'], '', 2):>10s} "
            f"{w['agent_core']:6.2f} {100 * w['machine']:6.0f}% {w['others']:6.2f}"
        )
    print(
        "agent CPU: the agent process's CPU per reconcile pass (telemetry and health server included); engine "
        "calls: per pass, from the reconcilers' counters (starts and removals included); pass wall: one "
        "reconcile_once; dashboard: the serve process group; engine svc: Podman's service process (shared with "
        "any other client of the engine); agent cores: the agent process's CPU over the window; machine busy: "
        "all cores, all processes; others: cores used by every other process (this bench's client excluded): "
        "the machine's other work, and the engine's conmon and runc"
    )


# --- the run ----------------------------------------------------------------------------------------


def engine_url(args) -> str:
    if args.engine:
        return args.engine
    if os.environ.get("CONTAINER_ENGINE_URL"):
        return os.environ["CONTAINER_ENGINE_URL"]
    done = subprocess.run([str(ROOT / "scripts" / "container-engine")], capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise SystemExit(f"scripts/container-engine could not start a container engine:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def ours(client, node_ids: set[int]) -> list:
    found = []
    for c in client.containers.list(all=True, filters={"label": NODE_LABEL}):
        try:
            if int(c.labels.get(NODE_LABEL, "")) in node_ids:
                found.append(c)
        except ValueError:
            continue
    return found


def clean_up(engine: str, node_ids: set[int]) -> tuple[int, int]:
    """Remove every container labelled with one of ``node_ids``; (removed, left)."""
    import docker
    from docker.errors import NotFound

    client = docker.DockerClient(base_url=engine, timeout=60)
    try:
        removed = 0
        for c in ours(client, node_ids):
            try:
                c.remove(force=True)
                removed += 1
            except NotFound:
                pass
        return removed, len(ours(client, node_ids))
    finally:
        client.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rentals", type=int, default=50, help="rentals in each phase (default 50)")
    p.add_argument("--only", choices=["one-node", "one-host"], help="run one phase only")
    p.add_argument("--window", type=float, default=20, help="seconds of the idle and running windows (default 20)")
    p.add_argument("--timeout", type=float, default=60, help="seconds a rental may take to run or be removed")
    p.add_argument(
        "--engine", default="", help="engine URL (default $CONTAINER_ENGINE_URL or scripts/container-engine)"
    )
    p.add_argument("--each", action="store_true", help="print every rental's times too")
    p.add_argument("--keep", action="store_true", help="keep the run's folder (database and logs)")
    p.add_argument("--agent-host", help=argparse.SUPPRESS)
    return p


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    args = parser().parse_args()
    if args.agent_host:
        agent_host(args.agent_host)
        return 0
    signal.signal(signal.SIGTERM, _interrupt)
    engine = engine_url(args)
    import docker
    from docker.errors import ImageNotFound

    client = docker.DockerClient(base_url=engine, timeout=30)
    try:
        client.images.get(IMAGE)
    except ImageNotFound:
        raise SystemExit(f"the engine at {engine} has no {IMAGE}: scripts/container-engine builds it") from None
    finally:
        client.close()

    var = Path(tempfile.mkdtemp(prefix="aethir-workloads-"))
    env = environment(types.SimpleNamespace(database_url="", redis_url=""), var)
    env["LOG_LEVEL"] = "WARNING"
    os.environ.update(env)
    phases = [args.only] if args.only else ["one-node", "one-host"]
    n_nodes = (1 if "one-node" in phases else 0) + (args.rentals if "one-host" in phases else 0)
    load_before = os.getloadavg()
    print(
        f"Workloads bench: {IMAGE} on {engine}; {os.cpu_count()} cores, load average "
        f"{' '.join(f'{x:.2f}' for x in load_before)} at the start",
        flush=True,
    )
    tokens, person = build(n_nodes)
    node_ids = {node for node, _ in tokens}
    site = Site(env, 1, var, scheduler=False)
    results = []
    status = 0
    try:
        site.start()
        print(
            f"Dashboard on {site.url} (one Daphne worker, SQLite); nodes #{min(node_ids)}..#{max(node_ids)}", flush=True
        )
        epid = engine_pid()
        if "one-node" in phases:
            node, token = tokens[0]
            print(f"One node: {args.rentals} rentals one after another", flush=True)
            rows, windows = asyncio.run(one_node(args, site.url, person, node, token, engine, var, site, epid))
            results.append((f"One node, {args.rentals} rentals one after another", rows, windows))
        if "one-host" in phases:
            fleet = tokens[-args.rentals :]
            print(f"One host: {args.rentals} nodes in one agent process, rented in a burst", flush=True)
            rows, windows = asyncio.run(
                one_host(args, site.url, person, [n for n, _ in fleet], [t for _, t in fleet], engine, var, site, epid)
            )
            results.append((f"One host, {args.rentals} rentals launched in a burst", rows, windows))
    except KeyboardInterrupt:
        print("\nInterrupted: cleaning up", flush=True)
        status = 130
    except RuntimeError as exc:
        print(f"The bench could not run: {exc}", flush=True)
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        site.stop()
        removed, left = clean_up(engine, node_ids)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    for title, rows, _ in results:
        print_latency(title, rows, args.each)
    if results:
        print_windows([w for _, _, windows in results for w in windows])
    load_after = os.getloadavg()
    print(
        f"\nload average {' '.join(f'{x:.2f}' for x in load_after)} at the end; containers left by the agents and "
        f"removed by the bench: {removed}; left on the engine: {left}"
    )
    problems = []
    for title, rows, _ in results:
        total = [r["total"] for r in rows]
        if any(t is None for t in total):
            problems.append(f"{title}: {sum(t is None for t in total)} rentals never ran")
        p95 = pct(total, 95)
        if p95 is not None:
            print(f"{title}: p95 rent request -> running {p95:.2f}s (aim: under {AIM_P95:.0f}s)")
    if left:
        problems.append(f"{left} containers of this run are still on the engine")
    if args.keep:
        print(f"kept: {var}")
    else:
        shutil.rmtree(var, ignore_errors=True)
    if problems:
        print("FAILED:\n" + "\n".join("  - " + p for p in problems))
        status = status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())

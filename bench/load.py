"""Load test: the whole product at once, against a real local server.

Builds its own network in a fresh database (SQLite in a temporary folder, or a
fresh PostgreSQL database named after this run when ``--database-url`` is
given): the demo seed (about 1,000 nodes, 60 checkers, 300 delegators, an
open proposal, history) grown to 10,000 GPU nodes, each with an agent token,
and funded people for each role. It starts the site the production way
(``DEBUG=0``, ``manage.py serve --workers N``, plus ``run_scheduler`` so
epochs settle under load) and then, for a fixed time, drives at once:

* browsing people (the landing page, catalogue with filters, monitoring,
  staking, governance, explorer, settlement pages), with think time;
* renters (ask the scheduler, rent the top candidate, look at it, end it);
* delegators (list checkers, delegate, look at their positions, claim);
* voters (vote or change their vote on the open proposal, read the tally);
* 10,000 provider agents, each posting a heartbeat batch every
  ``--post-every`` seconds (open loop: the arrival rate does not slow down
  when the server does, as real agents would not).

It prints throughput, p50/p95/p99 and error counts per kind of user, then
audits: every write the server acknowledged (rentals, ends, delegations,
votes, heartbeat samples) is in the database, and ``verify_ledger`` passes.
Exits non-zero if the audit fails.

    python bench/load.py [--duration 60] [--workers 1]
    python bench/load.py --workers 4 --database-url postgres://postgres@127.0.0.1:5432/aethir_load \\
                         --redis-url redis://127.0.0.1:6379/9
"""

import argparse
import asyncio
import json as json_module  # `json` is the request-body argument below
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IMAGE = "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"
PAGES = [
    "/",
    "/marketplace/",
    "/marketplace/?gpu=h100-80gb&sort=price",
    "/marketplace/?min_vram=40&region=eu-west&sort=health",
    "/marketplace/?count=8&availability=free&sort=-price&page=2",
    "/monitoring/",
    "/staking/",
    "/staking/?sort=apr",
    "/governance/",
    "/explorer/",
    "/settlement/",
    "/governance/parameters/",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the environment and the data --------------------------------------------


def fresh_postgres(url: str, default_name: str = "aethir_load") -> str:
    """Drop and create the database named in ``url`` (``default_name`` when it
    names none); return the URL of that database."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/") or default_name
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def environment(args, var: Path) -> dict:
    """The production settings (DEBUG=0) on a database of this run's own."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        AETHIR_VAR_DIR=str(var),
        DEBUG="0",
        DEMO_MODE="1",
        SECRET_KEY="load-" + secrets.token_hex(32),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE="aethir_web.settings",
        PYTHONUNBUFFERED="1",
        REDIS_PREFIX=f"aethir-load-{os.getpid()}",
        STATIC_ROOT=str(var / "static"),
    )
    if args.database_url:
        env["DATABASE_URL"] = fresh_postgres(args.database_url)
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    return env


@dataclass
class Person:
    username: str
    session: str
    csrf: str = field(default_factory=lambda: secrets.token_hex(16))  # a 32-character CSRF secret

    def headers(self, base: str) -> dict:
        # Behind the TLS proxy of the production setup: Django sees https and
        # checks the Referer as it would for a browser.
        return {
            "Cookie": f"sessionid={self.session}; csrftoken={self.csrf}",
            "X-CSRFToken": self.csrf,
            "X-Forwarded-Proto": "https",
            "Referer": base.replace("http://", "https://") + "/",
        }


@dataclass
class Network:
    tokens: list[tuple[int, str]]  # (node id, raw agent token)
    renters: list[Person]
    delegators: list[Person]
    voters: list[Person]
    browsers: list[Person]
    checkers: list[int]
    proposal: int | None
    regions: list[str]


def build(n_nodes: int, people: dict[str, int], progress=print) -> Network:
    """Seed the demo network, grow it to ``n_nodes`` nodes with agent tokens,
    and open a session for each simulated person. Runs in this process
    against the database of ``os.environ``."""
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import transaction

    from apps.accounts.services import open_wallet
    from apps.core import ledger
    from apps.core.amounts import ath
    from apps.core.models import AgentToken, CheckerNode, GpuNode, ModuleAccount, Region, TxKind, hash_token
    from apps.demo import seed as demo
    from apps.governance.models import Proposal
    from bench.sandbox import random_nodes

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # DEBUG=0 serves the hashed files
    demo.seed(nodes=min(n_nodes, 1000))
    progress(f"  demo network seeded in {time.perf_counter() - t0:.0f}s")

    missing = n_nodes - GpuNode.objects.count()
    if missing > 0:
        owner, _ = User.objects.get_or_create(username="load-provider")
        nodes = random_nodes(
            random.Random(11),
            missing,
            [owner],
            name="load-{:05d}",
            prices=(500_000, 4_000_000, 10_000),
            endpoint="http://127.0.0.1:9/health",
            status="pending",
        )
        GpuNode.objects.bulk_create(nodes, batch_size=2000)
    AgentToken.objects.filter(node__isnull=False).delete()
    tokens = []
    rows = []
    for node_id in GpuNode.objects.order_by("pk").values_list("pk", flat=True)[:n_nodes]:
        raw = f"agt_{secrets.token_urlsafe(24)}"
        tokens.append((node_id, raw))
        rows.append(AgentToken(key_hash=hash_token(raw), prefix=raw[4:12], node_id=node_id))
    AgentToken.objects.bulk_create(rows, batch_size=2000)

    def open_session(user) -> Person:
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.set_expiry(24 * 3600)
        store.create()
        return Person(user.username, store.session_key)

    def funded(prefix: str, n: int, amount: int) -> list[Person]:
        out = []
        with transaction.atomic():
            for i in range(n):
                user, _ = User.objects.get_or_create(username=f"{prefix}-{i:03d}")
                user.set_unusable_password()
                user.save()
                wallet = open_wallet(user)
                if wallet.available < amount:
                    ledger.transfer(
                        ledger.module_account(ModuleAccount.FAUCET),
                        wallet,
                        amount,
                        kind=TxKind.FAUCET,
                        memo="load test funds",
                    )
                out.append(open_session(user))
        return out

    # Voters are holders the seed funded before the proposal's snapshot, so
    # their votes carry power.
    voters = [
        open_session(u)
        for u in User.objects.filter(username__startswith="delegator-").order_by("username")[: people["voters"]]
    ]
    proposal = Proposal.objects.filter(status="voting").order_by("-pk").values_list("pk", flat=True).first()
    network = Network(
        tokens=tokens,
        renters=funded("load-renter", people["renters"], ath(50_000)),
        delegators=funded("load-delegator", people["delegators"], ath(50_000)),
        voters=voters,
        browsers=funded("load-browser", people["browsers"], 0),
        checkers=list(CheckerNode.objects.filter(status="active").values_list("pk", flat=True)),
        proposal=proposal,
        regions=list(Region.objects.values_list("code", flat=True)),
    )
    from django.db import connections

    connections.close_all()
    progress(f"  {len(tokens):,} nodes with agent tokens, people and sessions ready in {time.perf_counter() - t0:.0f}s")
    return network


# --- the server ----------------------------------------------------------------


class Site:
    """``manage.py serve`` (N Daphne workers on one port) and, optionally,
    ``run_scheduler``, each in its own process group so a fault can kill one
    outright."""

    def __init__(self, env: dict, workers: int, var: Path, scheduler: bool = True):
        self.env, self.workers, self.var, self.with_scheduler = env, workers, var, scheduler
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web = self.scheduler = None

    def _spawn(self, name: str, *args) -> subprocess.Popen:
        log = open(self.var / f"{name}.log", "a")
        return subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_web(self) -> None:
        self.web = self._spawn("web", "serve", "--port", str(self.port), "--workers", str(self.workers))
        self.wait_until_up()

    def wait_until_up(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2)
                return
            except OSError:
                if self.web.poll() is not None:
                    break
                time.sleep(0.3)
        raise SystemExit("the web server did not start: see " + str(self.var / "web.log"))

    def start(self) -> "Site":
        self.start_web()
        if self.with_scheduler:
            self.scheduler = self._spawn("scheduler", "run_scheduler")
        return self

    @staticmethod
    def kill(process, sig=signal.SIGKILL) -> None:
        if process and process.poll() is None:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop(self) -> None:
        self.kill(self.scheduler, signal.SIGTERM)
        self.kill(self.web, signal.SIGTERM)


# --- the simulated people -------------------------------------------------------


class Stats:
    def __init__(self):
        self.latency = defaultdict(list)  # kind -> seconds
        self.status = defaultdict(lambda: defaultdict(int))  # kind -> "2xx"/"4xx"/"5xx"/"conn" -> n
        self.acknowledged = defaultdict(list)  # what the server said it did
        self.behind = 0  # agent posts that could not start on time (client at its limit)
        self.refusals = defaultdict(int)  # (kind, status, message) -> n, for the 4xx a reader should see

    def record(self, kind: str, seconds: float, status: int | str) -> None:
        self.latency[kind].append(seconds)
        key = status if isinstance(status, str) else f"{status // 100}xx"
        self.status[kind][key] += 1


class Load:
    def __init__(
        self,
        base: str,
        network: Network,
        stats: Stats,
        *,
        post_every: float,
        samples: int,
        agent_limit: int,
        think: tuple[float, float] = (1.0, 3.0),
        seed: int = 5,
    ):
        self.base, self.net, self.stats = base, network, stats
        self.post_every, self.samples, self.agent_limit, self.think = post_every, samples, agent_limit, think
        self.rng = random.Random(seed)
        self.sample_seq = 0

    async def call(self, session, kind: str, method: str, path: str, person: Person | None = None, json=None):
        import aiohttp

        headers = person.headers(self.base) if person else {"X-Forwarded-Proto": "https"}
        started = time.perf_counter()
        try:
            async with session.request(
                method, self.base + path, json=json, headers=headers, allow_redirects=False
            ) as r:
                body = await r.read()
                self.stats.record(kind, time.perf_counter() - started, r.status)
                if 400 <= r.status < 500:
                    self.stats.refusals[(kind, r.status, body[:90].decode(errors="replace"))] += 1
                if r.status < 300 and r.content_type == "application/json":
                    return r.status, json_module.loads(body)
                return r.status, None
        except (TimeoutError, aiohttp.ClientError, OSError):
            self.stats.record(kind, time.perf_counter() - started, "conn")
            return None, None

    async def pause(self):
        await asyncio.sleep(self.rng.uniform(*self.think))

    async def browser(self, session, person: Person, until: float):
        while time.monotonic() < until:
            page = self.rng.choice(PAGES + [f"/monitoring/nodes/{self.rng.choice(self.net.tokens)[0]}/"])
            await self.call(session, "browse", "GET", page, person if self.rng.random() < 0.5 else None)
            await self.pause()

    async def renter(self, session, person: Person, until: float):
        while time.monotonic() < until:
            _, found = await self.call(
                session,
                "rent",
                "POST",
                "/api/marketplace/match/",
                person,
                {
                    "gpu_count": 1,
                    "preference": self.rng.choice(["cheapest", "balanced", "experience"]),
                    "region": self.rng.choice(self.net.regions),
                    "limit": 3,
                },
            )
            candidates = (found or {}).get("candidates") or []
            if not candidates:
                await self.pause()
                continue
            node = candidates[0]["node"]["id"]
            code, rental = await self.call(
                session,
                "rent",
                "POST",
                "/api/marketplace/rentals/",
                person,
                {"node": node, "mode": "reserved", "image": IMAGE, "epochs": 2},
            )
            if code == 201 and rental:
                self.stats.acknowledged["rentals"].append((person.username, rental["id"]))
                await self.pause()
                await self.call(session, "rent", "GET", f"/api/marketplace/rentals/{rental['id']}/", person)
                await self.pause()
                code, _ = await self.call(
                    session, "rent", "POST", f"/api/marketplace/rentals/{rental['id']}/end/", person
                )
                if code == 200:
                    self.stats.acknowledged["ends"].append(rental["id"])
            await self.pause()

    async def delegator(self, session, person: Person, until: float):
        while time.monotonic() < until:
            await self.call(session, "delegate", "GET", "/api/staking/checkers/?sort=apr", person)
            checker = self.rng.choice(self.net.checkers)
            code, _ = await self.call(
                session,
                "delegate",
                "POST",
                "/api/staking/delegate/",
                person,
                {"checker": checker, "amount": str(self.rng.randrange(100, 1000) * 1_000_000)},
            )
            if code == 201:
                self.stats.acknowledged["delegations"].append(person.username)
            await self.pause()
            await self.call(session, "delegate", "GET", "/api/staking/me/", person)
            if self.rng.random() < 0.3:
                await self.call(session, "delegate", "POST", "/api/staking/claim/", person, {})
            await self.pause()

    async def voter(self, session, person: Person, until: float):
        if self.net.proposal is None:
            return
        path = f"/api/governance/proposals/{self.net.proposal}/"
        while time.monotonic() < until:
            choice = self.rng.choice(["yes", "yes", "no", "abstain", "no_with_veto"])
            code, _ = await self.call(session, "vote", "POST", path + "vote/", person, {"choice": choice})
            if code in (200, 201):
                # A person votes one at a time, so the last acknowledged choice is the one that must count.
                self.stats.acknowledged["votes"].append((person.username, choice))
            await self.pause()
            await self.call(session, "vote", "GET", path, person)
            await self.pause()

    async def agents(self, session, until: float):
        """Every node posts a batch every ``post_every`` seconds, spread evenly."""
        interval = self.post_every / len(self.net.tokens)
        in_flight = asyncio.Semaphore(self.agent_limit)
        tasks = set()
        next_at = time.monotonic()
        i = 0

        async def post(node_id: int, token: str):
            try:
                now = datetime.now(UTC)
                batch = []
                for k in range(self.samples):
                    at = now - timedelta(seconds=(self.samples - k) * self.post_every / self.samples)
                    batch.append(
                        {
                            "at": at.isoformat(),
                            "gpu_util": self.rng.randrange(0, 100),
                            "mem_used_mb": 30_000,
                            "mem_total_mb": 81_920,
                            "temperature_c": self.rng.randrange(40, 80),
                            "power_w": 400,
                            "workloads": 1,
                        }
                    )
                started = time.perf_counter()
                try:
                    async with session.post(
                        self.base + "/api/agent/heartbeats/",
                        json={"samples": batch},
                        headers={"Authorization": f"Agent {token}", "X-Forwarded-Proto": "https"},
                        allow_redirects=False,
                    ) as r:
                        body = await r.json(content_type=None) if r.status == 201 else None
                        self.stats.record("agent", time.perf_counter() - started, r.status)
                        if body:
                            self.stats.acknowledged["samples"].append((node_id, int(body.get("stored", 0))))
                except Exception:  # noqa: BLE001 - any failure is a failed request to report
                    self.stats.record("agent", time.perf_counter() - started, "conn")
            finally:
                in_flight.release()

        while time.monotonic() < until:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            if in_flight.locked():
                self.stats.behind += 1  # the client is at its limit: this post starts late
            await in_flight.acquire()
            node_id, token = self.net.tokens[i % len(self.net.tokens)]
            i += 1
            task = asyncio.create_task(post(node_id, token))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=30)

    async def run(self, duration: float, counts: dict[str, int]):
        import aiohttp

        until = time.monotonic() + duration
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
        ) as session:
            jobs = [self.agents(session, until)] if counts["agents"] else []
            for role, people in (
                ("browsers", self.net.browsers),
                ("renters", self.net.renters),
                ("delegators", self.net.delegators),
                ("voters", self.net.voters),
            ):
                jobs += [getattr(self, role[:-1])(session, p, until) for p in people[: counts[role]]]
            await asyncio.gather(*jobs)


# --- figures and the audit ------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))] * 1000


def report(stats: Stats, seconds: float) -> None:
    print(
        f"{'':10s} {'requests':>9s} {'req/s':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'2xx':>7s} {'4xx':>6s} {'5xx':>5s} {'conn':>5s}"
    )
    total = 0
    for kind in ("browse", "rent", "delegate", "vote", "agent"):
        lat, st = stats.latency.get(kind, []), stats.status.get(kind, {})
        total += len(lat)
        print(
            f"{kind:10s} {len(lat):9,d} {len(lat) / seconds:7.1f} {pct(lat, 50):8.1f} {pct(lat, 95):8.1f} {pct(lat, 99):8.1f} "
            f"{st.get('2xx', 0) + st.get('3xx', 0):7,d} {st.get('4xx', 0):6,d} {st.get('5xx', 0):5,d} {st.get('conn', 0):5,d}"
        )
    samples = sum(n for _, n in stats.acknowledged["samples"])
    print(
        f"{'all':10s} {total:9,d} {total / seconds:7.1f}   heartbeat samples stored: {samples:,} ({samples / seconds:,.0f}/s); "
        f"agent posts that started late: {stats.behind:,}"
    )
    for (kind, code, message), n in sorted(stats.refusals.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  refused {n:5,d}x  {kind} {code} {message}")


def audit(stats: Stats) -> list[str]:
    """Everything the server acknowledged is in the database; the ledger verifies."""
    import django

    django.setup()
    from django.db.models import Count

    from apps.core.models import Entry, TxKind
    from apps.core.verify import verify_ledger
    from apps.governance.models import Vote
    from apps.marketplace.models import Rental
    from apps.monitoring.models import Heartbeat

    problems = []
    ack = stats.acknowledged
    rentals = {pk for _, pk in ack["rentals"]}
    found = set(Rental.objects.filter(pk__in=rentals).values_list("pk", flat=True))
    if found != rentals:
        problems.append(f"{len(rentals - found)} acknowledged rentals are missing")
    ended = set(ack["ends"])
    still_active = Rental.objects.filter(pk__in=ended, status="active").count()
    if still_active:
        problems.append(f"{still_active} rentals acknowledged as ended are still active")
    per_person = defaultdict(int)
    for username in ack["delegations"]:
        per_person[username] += 1
    if per_person:
        counted = dict(
            Entry.objects.filter(tx__kind=TxKind.DELEGATE, account__owner__username__in=per_person, amount__lt=0)
            .values_list("account__owner__username")
            .annotate(n=Count("tx", distinct=True))
        )
        short = [u for u, n in per_person.items() if counted.get(u, 0) < n]
        if short:
            problems.append(f"{len(short)} delegators have fewer delegations in the ledger than were acknowledged")
    last_vote = {}
    for username, choice in ack["votes"]:
        last_vote[username] = choice
    if last_vote:
        stored = dict(
            Vote.objects.filter(voter__owner__username__in=last_vote).values_list("voter__owner__username", "choice")
        )
        wrong = [u for u, c in last_vote.items() if stored.get(u) != c]
        if wrong:
            problems.append(f"{len(wrong)} voters' last acknowledged vote is not the one stored")
    acked_samples = defaultdict(int)
    for node_id, n in ack["samples"]:
        acked_samples[node_id] += n
    if acked_samples:
        stored = dict(
            Heartbeat.objects.filter(node_id__in=acked_samples).values_list("node_id").annotate(n=Count("pk"))
        )
        short = [n for n, k in acked_samples.items() if stored.get(n, 0) < k]
        if short:
            problems.append(f"{len(short)} nodes have fewer heartbeat samples stored than were acknowledged")
    result = verify_ledger()
    if not result.ok:
        problems.append("verify_ledger failed: " + "; ".join(p.message for p in result.problems[:5]))
    print(
        f"audit: {len(rentals):,} rentals, {len(ended):,} ends, {len(ack['delegations']):,} delegations, "
        f"{len(ack['votes']):,} votes, {sum(acked_samples.values()):,} heartbeat samples acknowledged: "
        + ("all present; verify_ledger passed" if not problems else "PROBLEMS")
    )
    for p in problems:
        print("  - " + p)
    return problems


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=60, help="seconds of load")
    p.add_argument("--workers", type=int, default=1, help="Daphne workers behind the one port")
    p.add_argument("--database-url", default="", help="a PostgreSQL URL; the database is dropped and created")
    p.add_argument("--redis-url", default="", help="a Redis URL for the channel layer and cache")
    p.add_argument("--nodes", type=int, default=10_000, help="GPU nodes, each with a provider agent")
    p.add_argument("--post-every", type=float, default=15.0, help="seconds between one agent's heartbeat posts")
    p.add_argument("--samples", type=int, default=3, help="samples per heartbeat batch (one per 5 s at 15 s)")
    p.add_argument("--agent-limit", type=int, default=64, help="agent posts in flight at most")
    for role, n in (("browsers", 30), ("renters", 10), ("delegators", 10), ("voters", 10)):
        p.add_argument(f"--{role}", type=int, default=n)
    p.add_argument("--no-scheduler", action="store_true", help="do not settle epochs during the run")
    return p


def main():
    args = parser().parse_args()
    var = Path(tempfile.mkdtemp(prefix="aethir-load-"))
    env = environment(args, var)
    os.environ.update(env)
    where = "PostgreSQL" if args.database_url else "SQLite"
    where += " + Redis" if args.redis_url else " + in-memory channel layer"
    print(f"Building the network on {where} ...")
    counts = {
        "browsers": args.browsers,
        "renters": args.renters,
        "delegators": args.delegators,
        "voters": args.voters,
        "agents": args.nodes,
    }
    network = build(args.nodes, counts)
    site = Site(env, args.workers, var, scheduler=not args.no_scheduler).start()
    print(
        f"Load for {args.duration:.0f}s on {site.url}: {args.workers} Daphne worker(s), {args.browsers} browsing, "
        f"{args.renters} renting, {args.delegators} delegating, {args.voters} voting, {args.nodes:,} agents posting "
        f"{args.samples} samples every {args.post_every:.0f}s (target {args.nodes / args.post_every:,.0f} posts/s)"
    )
    stats = Stats()
    started = time.monotonic()
    try:
        asyncio.run(
            Load(
                site.url, network, stats, post_every=args.post_every, samples=args.samples, agent_limit=args.agent_limit
            ).run(args.duration, counts)
        )
    finally:
        elapsed = time.monotonic() - started
        site.stop()
    report(stats, elapsed)
    problems = audit(stats)
    print(f"logs and database: {var}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

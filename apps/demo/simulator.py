"""Many provider and checker agents in one process, on loopback, with
fault injection: nodes that go down, slow down or lie about their GPU, and
checkers that report falsely. Each agent is the real agent class (with the
faults added here, in the demo, not in the agents operators run) talking to
the dashboard over HTTP and probing real sockets.

The simulator runs on the dashboard's own machine, so its checkers probe
only the health endpoints its own node agents listen on (``OwnedEndpoints``),
on loopback: a node whose provider declared an endpoint of its own is never
fetched from here, and is reported as not answering, with that reason.

Simulated nodes compute their compute challenges for real (numpy, at the
demo's small size); the lying ones claim a faster GPU than they have: their
agent reports the declared one, but half answer their challenges as late as
their real hardware would at the network's production size, and half commit
to a product they never computed, so checkers catch them.

Simulated nodes run no container: when one of them is rented, its agent
reports the lease running with ``SIMULATED`` as the reason, and gives each
port the lease declares its own listener's address as the endpoint, so
checkers that probe a rental's endpoints find them answering. The
simulator tells an agent to read its leases again only when the rentals of
its node change (``find_leases``), not a thousand agents polling."""

import asyncio
import fcntl
import html
import json
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
from aiohttp import web

from apps.monitoring import challenge
from apps.monitoring.agents.addresses import AddressPolicy
from apps.monitoring.agents.checker import PPM, CheckerAgent
from apps.monitoring.agents.provider import ProviderAgent

log = logging.getLogger(__name__)

# The reason a simulated node's agent gives for each lease it "runs".
SIMULATED = "simulated: this demo node runs no container"
# A lease set that still differs after a read is read again after this long.
LEASES_RETRY_S = 15.0
# How late a lying node that computes on slower hardware than it declared
# answers a challenge: a two-core CPU's time at the production size
# (bench/challenge.py), past any demo deadline.
IMPOSTOR_DELAY_S = 5.0
# A simulated node's link runs at this share of the bandwidth its provider
# declared, steady per node (drawn from its id): real links rarely reach
# their nominal rate, and no two alike.
LINK_SHARE = (0.80, 0.98)
# What a simulated node reports besides its GPUs, by GPU model (a word of
# its name): the CUDA driver a host of that card typically runs, and its
# disk, total GB per GPU. The first match wins; the last is the fallback.
SIMULATED_HOSTS = (
    ("H200", "12.6", 2000),
    ("H100", "12.4", 2000),
    ("A100", "12.2", 1000),
    ("L40S", "12.4", 1000),
    ("A6000", "12.2", 500),
    ("4090", "12.4", 500),
    ("3090", "12.1", 250),
    ("", "11.8", 250),
)


@dataclass
class Faults:
    """``down`` closes the listening socket, ``slow_ms`` delays every answer
    (and stretches a speed test's download by as much), ``lie`` claims a
    faster GPU than the node has: compute challenges fail (late on odd node
    ids, wrong rows on even ones)."""

    down: bool = False
    slow_ms: int = 0
    lie: bool = False


@dataclass
class FaultyProvider(ProviderAgent):
    """A provider agent whose node can go down, answer slowly or lie."""

    faults: Faults = field(default_factory=Faults)
    # Small writes, so that a speed test's download can be paced to the link.
    speed_chunk: int = 8 * 1024

    def __post_init__(self):
        super().__post_init__()
        self.link_mbps: float | None = None  # from the bandwidth the node declared (identify)
        self.leases_running: dict[int, dict] = {}  # lease -> the report the dashboard took
        self.leases_wanted: frozenset[int] = frozenset()  # what the simulator said at the last read
        self.leases_read_at = 0.0

    async def identify(self) -> dict:
        """As a node's agent does, and learn the bandwidth the node declared:
        its simulated link runs at a steady share of it (LINK_SHARE)."""
        me = await super().identify()
        declared = me["node"].get("bandwidth_mbps")
        if type(declared) is int and declared > 0:
            self.link_mbps = declared * random.Random(f"link:{self.node_id}").uniform(*LINK_SHARE)
        return me

    async def pace(self, upto: int, total: int, started: float) -> None:
        """Send no faster than the simulated link: each chunk leaves when a
        link of ``link_mbps`` would have carried it and the bytes before it;
        a ``slow_ms`` node takes that much longer over the whole download."""
        seconds = total * 8 / (self.link_mbps * 1e6) if self.link_mbps else 0.0
        seconds += self.faults.slow_ms / 1000
        ahead = started + seconds * upto / total - time.monotonic()
        if ahead > 0:
            # One sleep, never a busy wait: a thousand nodes share this
            # process's event loop, and their health answers are timed. The
            # loop's timers may oversleep a fast link's sub-millisecond gaps
            # (such a link reads a little slower than it is).
            await asyncio.sleep(ahead)

    async def start_workloads(self, stop):
        """No engine, and no polling: the simulator calls ``sync_leases``
        when its node's rentals change."""
        return None

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        app.router.add_get("/", self.simulated_page)  # where a simulated lease's endpoints lead

    async def simulated_page(self, request):
        if self.faults.slow_ms:
            await asyncio.sleep(self.faults.slow_ms / 1000)
        name = html.escape(str(self.node_id))
        return web.Response(
            text=(
                "<!doctype html><html><head><meta charset='utf-8'><title>Simulated node</title></head><body>"
                f"<h1>Simulated node {name}</h1><p>This node of the demo network is simulated: it runs no "
                "container. Its agent reports a rental's workload as running and points every port at this "
                "listener, so checkers' probes find the endpoints answering.</p></body></html>"
            ),
            content_type="text/html",
        )

    async def sync_leases(self) -> None:
        """Read this node's leases and report each one running (``SIMULATED``),
        every declared port at this agent's own listener; a lease reported
        before and no longer listed is reported removed."""
        if self.faults.down:
            return  # a down node says nothing
        leases = await self.fetch_leases()
        if leases is None:
            return
        address = f"{self.host}:{self.port}"
        listed = {}
        for item in leases:
            ports = item.get("ports") if isinstance(item.get("ports"), list) else []
            listed[item["lease"]] = {
                "lease": item["lease"],
                "state": "running",
                "exit_code": None,
                "reason": SIMULATED,
                "endpoints": {str(p): address for p in ports if type(p) is int and 0 < p < 65536},
                "log_tail": f"{SIMULATED}: {str(item.get('image'))[:200]} is not started here.\n",
            }
        reports = [r for lease, r in sorted(listed.items()) if self.leases_running.get(lease) != r]
        gone = sorted(set(self.leases_running) - set(listed))
        reports += [{**self.leases_running[lease], "state": "removed", "endpoints": {}} for lease in gone]
        if not reports:
            return
        settled = await self.report_leases(reports)
        for report in (r for r in reports if r["lease"] in settled):
            if report["state"] == "removed":
                self.leases_running.pop(report["lease"], None)
            else:
                self.leases_running[report["lease"]] = report

    async def health(self, request):
        if self.faults.slow_ms:
            await asyncio.sleep(self.faults.slow_ms / 1000)
        return await super().health(request)

    async def computed(self, seed: bytes, n: int) -> challenge.Commitment:
        if self.faults.lie and self.node_id % 2:
            # Slower hardware than declared: the product comes, but late.
            await asyncio.sleep(IMPOSTOR_DELAY_S)
        return await super().computed(seed, n)

    def compute_challenge(self, seed: bytes, n: int) -> challenge.Commitment:
        if self.faults.lie and not self.node_id % 2:
            # No product at all: a commitment to zeros, whose rows cannot verify.
            return challenge.commit(seed, np.zeros((n, n), dtype=np.int32))
        return super().compute_challenge(seed, n)

    async def set_down(self, down: bool):
        """Stop or restart listening (connections are refused)."""
        if down == self.faults.down:
            return
        self.faults.down = down
        if down and self._site:
            await self._site.stop()
            self._site = None
        elif not down and self._runner:
            await self._bind()

    def sample(self):
        if self.faults.down:
            return  # a down node sends nothing
        super().sample()

    def host_facts(self) -> dict:
        """Plausible for its GPU model, steady per node: the demo's disks are not
        this machine's."""
        name = self.facts.name if self.facts else ""
        cuda, per_gpu = next((c, d) for word, c, d in SIMULATED_HOSTS if word in name)
        total = per_gpu * (self.facts.count if self.facts else 1)
        used = total * (20 + (self.node_id or 0) * 37 % 60) // 100
        return {"cuda_version": cuda, "disk_free_gb": total - used, "disk_total_gb": total}


class FalseChecker(CheckerAgent):
    """A checker agent that signs made-up numbers: consensus should outvote
    it and settlement penalise it."""

    def measured(self, epoch: int, node: int) -> dict:
        report = super().measured(epoch, node)
        report.update(
            uptime_ppm=self.rng.randint(0, PPM), latency_ms=self.rng.randint(1, 2000), spec_ok=not report["spec_ok"]
        )
        report["task_ppm"] = self.rng.randint(0, PPM)
        c = report.get("challenge")
        if c and c["root"] and c["rows"]:
            # The opposite verdict on the challenge it ran: a pass its rows do
            # not support is false on its face, a failure is outvoted.
            report["challenge"] = {**c, "passed": not c["passed"], "reason": "" if not c["passed"] else "made up"}
        return report


@dataclass
class SimNode:
    node_id: int
    token: str
    faults: Faults = field(default_factory=Faults)


@dataclass
class SimChecker:
    checker_id: int
    token: str
    liar: bool = False


class OwnedEndpoints:
    """The endpoints this simulator's node agents listen on, by node id: the
    only ones its checkers probe. When nodes and checkers run in separate
    processes, the nodes' process writes them to ``path`` (before the
    dashboard learns them) and the checkers' process reads them from it.
    Several processes may run nodes (the simulated ones, the demo's nodes
    on this machine): each adds its own to what the file holds, under a lock."""

    NOT_OURS = "not a node the simulator runs (its endpoint was declared by its provider)"

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else None
        self.known: dict[int, str] = {}
        self._stamp = None
        self._checked_at = 0.0

    def add(self, endpoints: dict[int, str]) -> None:
        if not endpoints:
            # The checkers' process runs no node agents: writing its empty map
            # would erase the nodes' process's, and no node would be probed.
            return
        self.known.update(endpoints)
        if not self.path:
            return
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            try:
                on_file = {int(k): v for k, v in json.loads(self.path.read_text()).items()}
            except (OSError, ValueError):
                on_file = {}
            self.known = {**on_file, **self.known}
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({str(k): v for k, v in self.known.items()}))
            os.replace(tmp, self.path)  # readers see the old map or the new one, never half of it

    def _reload(self) -> None:
        if not self.path or time.monotonic() - self._checked_at < 0.5:
            return
        self._checked_at = time.monotonic()
        try:
            stat = self.path.stat()
            if (stat.st_mtime_ns, stat.st_size) != self._stamp:
                self.known = {int(k): v for k, v in json.loads(self.path.read_text()).items()}
                self._stamp = (stat.st_mtime_ns, stat.st_size)
        except (OSError, ValueError):
            pass  # not written yet: no node is ours

    def refusal(self, node_id: int, endpoint: str) -> str | None:
        if self.known.get(node_id) != endpoint:
            self._reload()
        return None if self.known.get(node_id) == endpoint else self.NOT_OURS


class Simulator:
    def __init__(
        self,
        api_url: str,
        nodes: list[SimNode],
        checkers: list[SimChecker],
        *,
        sample_every=5.0,
        post_every=15.0,
        probe_every=5.0,
        churn: float = 0.0,
        seed: int = 0,
        on_endpoints=None,
        find_new=None,
        adopt_every: float = 3.0,
        owned: OwnedEndpoints | None = None,
        find_leases=None,
        leases_every: float = 2.0,
    ):
        self.api_url = api_url
        self.nodes = nodes
        self.checkers = checkers
        self.sample_every, self.post_every, self.probe_every = sample_every, post_every, probe_every
        self.churn = churn
        self.rng = random.Random(seed)
        self.on_endpoints = on_endpoints  # called with {node_id: endpoint} once ports are bound
        # Called with the ids already simulated; returns SimNodes to bring to
        # life (nodes registered while the simulator runs).
        self.find_new = find_new
        self.adopt_every = adopt_every
        self.owned = owned or OwnedEndpoints()
        # Called with no argument; returns {node id: frozenset of lease ids}, the
        # leases the dashboard lists for each node now (None: leases are never read).
        self.find_leases = find_leases
        self.leases_every = leases_every
        self.providers: dict[int, FaultyProvider] = {}
        self.checker_agents: list[CheckerAgent] = []
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task] = []

    async def _start_providers(self, nodes: list[SimNode]) -> list[FaultyProvider]:
        agents = []
        for n in nodes:
            agent = FaultyProvider(
                api_url=self.api_url,
                token=n.token,
                sample_every=self.sample_every,
                post_every=self.post_every,
                seed=n.node_id,
                allow_nvml=False,
                session=self._session,
                faults=Faults(slow_ms=n.faults.slow_ms, lie=n.faults.lie),
            )
            agent.node_id = n.node_id
            self.providers[n.node_id] = agent
            agents.append(agent)
        # Identify and bind all health endpoints first, so checkers find them.
        await asyncio.gather(*(a.identify() for a in agents))
        for a in agents:
            await a.serve()
        self.owned.add({a.node_id: a.endpoint for a in agents})
        if self.on_endpoints:
            await asyncio.to_thread(self.on_endpoints, {a.node_id: a.endpoint for a in agents})
        for n in nodes:
            if n.faults.down:
                await self.providers[n.node_id].set_down(True)
        return agents

    async def start(self, session: aiohttp.ClientSession):
        self._session = session
        await self._start_providers(self.nodes)
        for c in self.checkers:
            agent_class = FalseChecker if c.liar else CheckerAgent
            self.checker_agents.append(
                agent_class(
                    api_url=self.api_url,
                    token=c.token,
                    probe_every=self.probe_every,
                    session=session,
                    policy=AddressPolicy.loopback_only(),
                    target_filter=self.owned.refusal,
                )
            )

    async def set_fault(self, node_id: int, *, down=None, slow_ms=None, lie=None):
        agent = self.providers[node_id]
        if down is not None:
            await agent.set_down(down)
        if slow_ms is not None:
            agent.faults.slow_ms = slow_ms
        if lie is not None:
            agent.faults.lie = lie

    async def _churn(self, stop: asyncio.Event):
        """Keep the demo alive: now and then a node goes down or comes back."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=10)
            except TimeoutError:
                pass
            for agent in self.providers.values():
                if self.rng.random() < self.churn:
                    await agent.set_down(not agent.faults.down)

    async def _adopt_new(self, stop: asyncio.Event):
        """Bring nodes registered after the start to life, so a node a person
        registers during the demo gets an agent that checkers can verify."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.adopt_every)
            except TimeoutError:
                pass
            if stop.is_set():
                break
            try:
                fresh = await asyncio.to_thread(self.find_new, set(self.providers))
                if not fresh:
                    continue
                self.nodes.extend(fresh)
                for agent in await self._start_providers(fresh):
                    self._tasks.append(asyncio.create_task(agent.run(stop)))
                log.info("simulating %d newly registered node(s): %s", len(fresh), [n.node_id for n in fresh])
            except Exception:
                log.exception("could not adopt newly registered nodes; retrying")

    async def _leases(self, stop: asyncio.Event):
        """Simulated workloads: every ``leases_every`` seconds, one look at
        which leases each node has (``find_leases``); an agent whose node's
        leases changed reads them and reports (``FaultyProvider.sync_leases``)."""
        reading = asyncio.Semaphore(16)

        async def sync(agent: FaultyProvider):
            async with reading:
                await agent.sync_leases()

        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.leases_every)
            except TimeoutError:
                pass
            if stop.is_set():
                break
            try:
                wanted = await asyncio.to_thread(self.find_leases)
            except Exception:
                log.exception("could not look up the simulated nodes' leases; retrying")
                continue
            now, due = time.monotonic(), []
            for node_id, agent in list(self.providers.items()):
                want = wanted.get(node_id, frozenset())
                if agent.faults.down or not agent.port or want == set(agent.leases_running):
                    continue
                if want == agent.leases_wanted and now - agent.leases_read_at < LEASES_RETRY_S:
                    continue  # read for this very set a moment ago: the dashboard may not list them yet
                agent.leases_wanted, agent.leases_read_at = want, now
                due.append(sync(agent))
            await asyncio.gather(*due, return_exceptions=True)

    async def _staggered(self, agent, within: float, stop: asyncio.Event):
        """Start ``agent`` at a random moment of the next ``within`` seconds.

        Agents in one process that all start together keep acting in step:
        checkers probing at the same instant measure each other's queueing
        as node latency and disagree, and node agents' telemetry comes in one
        burst every interval that holds up the health answers being timed."""
        try:
            await asyncio.wait_for(stop.wait(), timeout=self.rng.uniform(0, within))
            return
        except TimeoutError:
            pass
        await agent.run(stop)

    async def run(self, stop: asyncio.Event):
        self._tasks = [
            asyncio.create_task(self._staggered(a, self.sample_every, stop)) for a in self.providers.values()
        ]
        self._tasks += [asyncio.create_task(self._staggered(c, self.probe_every, stop)) for c in self.checker_agents]
        if self.churn:
            self._tasks.append(asyncio.create_task(self._churn(stop)))
        if self.find_new:
            self._tasks.append(asyncio.create_task(self._adopt_new(stop)))
        if self.find_leases:
            self._tasks.append(asyncio.create_task(self._leases(stop)))
        await stop.wait()
        # Adoption may have added tasks meanwhile: wait for all of them.
        while pending := [t for t in self._tasks if not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)
        for a in self.providers.values():
            if a._runner:
                await a._runner.cleanup()
        for c in self.checker_agents:
            if c._probe_session:
                await c._probe_session.close()

    def stats(self) -> dict:
        return {
            "samples_posted": sum(a.posted for a in self.providers.values()),
            "post_errors": sum(a.post_errors for a in self.providers.values()),
            "reports_sent": sum(c.reports_sent for c in self.checker_agents),
        }

"""Many provider and checker agents in one process, on loopback, with
fault injection: nodes that go down, slow down or lie about their GPU, and
checkers that report falsely. Each agent is the real agent class (with the
faults added here, in the demo, not in the agents operators run) talking to
the dashboard over HTTP and probing real sockets.

The simulator runs on the dashboard's own machine, so its checkers probe
only the health endpoints its own node agents listen on (``OwnedEndpoints``),
on loopback: a node whose provider declared an endpoint of its own is never
fetched from here, and is reported as not answering, with that reason."""

import asyncio
import json
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from apps.monitoring.agents.addresses import AddressPolicy
from apps.monitoring.agents.checker import PPM, CheckerAgent
from apps.monitoring.agents.provider import ProviderAgent

log = logging.getLogger(__name__)


@dataclass
class Faults:
    """``down`` closes the listening socket, ``slow_ms`` delays every answer,
    ``lie`` reports another GPU than the one declared."""

    down: bool = False
    slow_ms: int = 0
    lie: bool = False


@dataclass
class FaultyProvider(ProviderAgent):
    """A provider agent whose node can go down, answer slowly or lie."""

    faults: Faults = field(default_factory=Faults)

    async def health(self, request):
        if self.faults.slow_ms:
            await asyncio.sleep(self.faults.slow_ms / 1000)
        return await super().health(request)

    def health_answer(self) -> dict:
        answer = super().health_answer()
        if self.faults.lie:
            answer.update(gpu_name="NVIDIA GeForce RTX 3090 24GB", gpu_count=max(1, answer["gpu_count"] * 2))
        return answer

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


class FalseChecker(CheckerAgent):
    """A checker agent that signs made-up numbers: consensus should outvote
    it and settlement penalise it."""

    def measured(self, epoch: int, node: int) -> dict:
        report = super().measured(epoch, node)
        report.update(
            uptime_ppm=self.rng.randint(0, PPM), latency_ms=self.rng.randint(1, 2000), spec_ok=not report["spec_ok"]
        )
        report["task_ppm"] = self.rng.randint(0, PPM)
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
    dashboard learns them) and the checkers' process reads them from it."""

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
        if self.path:
            tmp = self.path.with_name(self.path.name + ".tmp")
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

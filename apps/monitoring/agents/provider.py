"""The provider agent: serves the health endpoint checkers probe, posts
GPU telemetry to the dashboard in batches, and, given a container engine
(``engine``), runs the node's leases (``workloads.WorkloadReconciler``).
Without one it still reads the node's leases, and reports each failed with
``NO_ENGINE`` as its reason, so a renter's page says why nothing runs.

The demo's simulated nodes (``apps.demo.simulator``) build on this class to
go down, answer slowly or claim another GPU; this one only tells the truth.
"""

import asyncio
import collections
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from .. import challenge as challenges
from .. import challenge_tickets
from .telemetry import GpuFacts, host_facts, open_source
from .workloads import MAX_LEASES_PER_POST, EngineSettings, WorkloadReconciler, host_has_nvidia_gpus

log = logging.getLogger(__name__)
MAX_BUFFER = 2_000
# The reason a node without a container engine reports for each of its leases.
NO_ENGINE = "this node has no container engine (its agent runs without --engine)"
# Compute challenges (docs/challenges.md): a request is a few hundred bytes;
# products are kept for the checker's row request, the latest few only; a
# challenge answered once is not computed again (a replay is refused).
MAX_CHALLENGE_REQUEST = 4 * 1024
# A challenge whose ticket the node's copy of the network key does not
# verify makes it ask the dashboard for the key again, this often at most.
NETWORK_KEY_REFRESH = 60.0
KEEP_COMMITMENTS = 3  # a node's checkers, R = 3 by default
REMEMBER_SEEDS = 4096
# Challenges waiting for the one being computed, beyond which a node is busy.
MAX_CHALLENGES_WAITING = 8
# Seconds a stopping agent gives answers in progress on its health endpoint.
SHUTDOWN_GRACE_S = 2.0
# The download a checker times (``GET /speed?bytes=N``): within these bounds,
# sent in chunks of one buffer of random bytes drawn once, so no compression
# on the way can make a node look faster than its link.
SPEED_MIN_BYTES = 1024
SPEED_MAX_BYTES = 16 * 1024 * 1024
SPEED_CHUNK = 64 * 1024
_SPEED_BUFFER = os.urandom(SPEED_CHUNK)


class BadChallenge(ValueError):
    """A challenge (or ``/speed``) request the agent refuses (400); the message says why."""


async def _bounded_json(request, limit: int) -> dict:
    if (request.content_length or 0) > limit:
        raise BadChallenge(f"a request over {limit} bytes")
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise BadChallenge(f"a request over {limit} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadChallenge("the request is not JSON") from None
    if not isinstance(data, dict):
        raise BadChallenge("the request is not a JSON object")
    return data


def _whole(data: dict, name: str, lo: int, hi: int) -> int:
    value = data.get(name)
    if type(value) is not int or not lo <= value <= hi:
        raise BadChallenge(f"{name} must be an integer from {lo} to {hi}")
    return value


def speed_size(query) -> int:
    """The byte count a ``/speed`` request asks for, or BadChallenge: one
    ``bytes`` parameter, plain decimal digits, from SPEED_MIN_BYTES to
    SPEED_MAX_BYTES, and nothing else in the query."""
    values = query.getall("bytes", [])
    if len(values) != 1 or len(query) != 1:
        raise BadChallenge("ask for one size: /speed?bytes=N")
    raw = values[0]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise BadChallenge("bytes must be a whole number in decimal digits")
    n = int(raw)
    if not SPEED_MIN_BYTES <= n <= SPEED_MAX_BYTES:
        raise BadChallenge(f"bytes must be from {SPEED_MIN_BYTES} to {SPEED_MAX_BYTES}")
    return n


def _failed(lease: int, reason: str) -> dict:
    return {"lease": lease, "state": "failed", "exit_code": None, "reason": reason, "endpoints": {}, "log_tail": ""}


@dataclass
class ProviderAgent:
    api_url: str
    token: str
    host: str = "127.0.0.1"
    port: int = 0
    sample_every: float = 5.0
    post_every: float = 15.0
    seed: int = 0
    allow_nvml: bool = True
    session: aiohttp.ClientSession | None = None
    # The container engine the node runs leases on; None: no workloads (the
    # health answer says "engine": "none").
    engine: EngineSettings | None = None
    reconcile_every: float = 2.0
    log_every: float = 5.0
    # Whose free and total space the node reports: where workloads write.
    disk_path: str = "."
    # Bytes per write of a ``/speed`` answer (at most SPEED_CHUNK).
    speed_chunk: int = SPEED_CHUNK

    def __post_init__(self):
        self.buffer: list[dict] = []
        self.facts: GpuFacts | None = None
        self.source = None
        self.node_id: int | None = None
        # The network's public key (hex), from the dashboard: with it, only
        # challenges with a valid ticket are computed (challenge_tickets.py).
        self.network_key = ""
        self._network_key_asked = float("-inf")
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.posted = 0
        self.post_errors = 0
        self.workloads: WorkloadReconciler | None = None
        self.commitments: collections.OrderedDict[bytes, challenges.Commitment] = collections.OrderedDict()
        self.answered_seeds: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self.challenges_waiting = 0
        self._challenge_lock: asyncio.Lock | None = None

    @property
    def headers(self):
        return {"Authorization": f"Agent {self.token}"}

    async def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self.session

    async def identify(self) -> dict:
        """Ask the dashboard which node this token is for (retrying until it answers)."""
        session = await self._session()
        delay = 1.0
        while True:
            try:
                async with session.get(f"{self.api_url}/api/agent/me/", headers=self.headers) as r:
                    if r.status == 200:
                        me = await r.json()
                        node = me["node"]
                        self.node_id = node["id"]
                        self.network_key = me.get("network_key") or ""
                        declared = GpuFacts(node["gpu_model"], node["gpu_count"], node["vram_gb"])
                        self.source = open_source(declared, seed=self.seed or node["id"], allow_nvml=self.allow_nvml)
                        self.facts = getattr(self.source, "facts", declared)
                        return me
                    if r.status in (401, 403):
                        raise RuntimeError(f"the dashboard refused this token: {await r.text()}")
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("dashboard unreachable (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)

    async def refresh_network_key(self) -> bool:
        """Ask the dashboard for the network's key again, at most once per
        ``NETWORK_KEY_REFRESH`` seconds; True if it changed."""
        now = time.monotonic()
        if now - self._network_key_asked < NETWORK_KEY_REFRESH:
            return False
        self._network_key_asked = now
        try:
            session = await self._session()
            async with session.get(f"{self.api_url}/api/agent/me/", headers=self.headers) as r:
                if r.status != 200:
                    return False
                key = (await r.json()).get("network_key") or ""
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.warning("could not ask the dashboard for the network's key: %r", exc)
            return False
        changed = bool(key) and key != self.network_key
        if changed:
            log.warning("the network's key changed; challenges are checked against the new one")
            self.network_key = key
        return changed

    # --- the health endpoint -------------------------------------------------------

    async def health(self, request):
        return web.json_response(self.health_answer())

    def health_answer(self) -> dict:
        """What the health endpoint answers: the GPU this node has, its latest utilisation."""
        facts = self.facts
        latest = self.buffer[-1] if self.buffer else {}
        return {
            "node": self.node_id,
            "gpu_name": facts.name,
            "gpu_count": facts.count,
            "vram_gb": facts.vram_gb,
            "gpu_util": latest.get("gpu_util"),
            **self.host_facts(),
            "engine": self.engine_state,
            "time": datetime.now(UTC).isoformat(),
        }

    @property
    def engine_state(self) -> str:
        """ "none" (no engine configured), "ok" (it answered the last pass) or "down"."""
        if self.engine is None:
            return "none"
        return self.workloads.engine if self.workloads else "down"

    def add_routes(self, app: web.Application) -> None:
        """The routes the agent's listener answers: the health endpoint, the
        compute challenge (its commitment, then the rows asked for) and the
        download checkers time (``/speed``)."""
        app.router.add_get("/health", self.health)
        app.router.add_post("/challenge", self.challenge)
        app.router.add_post("/challenge/rows", self.challenge_rows)
        app.router.add_get("/speed", self.speed, allow_head=False)

    # --- measured network speed ----------------------------------------------------

    async def speed(self, request):
        """``GET /speed?bytes=N``: N bytes of incompressible data, streamed in
        chunks, for a checker to time the node's download speed."""
        try:
            n = speed_size(request.query)
        except BadChallenge as exc:
            return web.json_response({"detail": str(exc)}, status=400)
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream", "Cache-Control": "no-store"})
        response.content_length = n
        await response.prepare(request)
        buffer = memoryview(_SPEED_BUFFER)
        started, sent = time.monotonic(), 0
        try:
            while sent < n:
                chunk = min(self.speed_chunk, n - sent)
                await self.pace(sent + chunk, n, started)
                await response.write(buffer[:chunk])
                sent += chunk
            await response.write_eof()
        except ConnectionResetError:
            pass  # the checker stopped reading (its time ran out): nothing to answer
        return response

    async def pace(self, upto: int, total: int, started: float) -> None:
        """Called before each chunk of a ``/speed`` answer is written (once
        written, ``upto`` of its ``total`` bytes are out; the answer began at
        ``started`` on the monotonic clock): a real node sends as fast as its
        link goes; the demo's simulated nodes wait here."""

    # --- compute challenges --------------------------------------------------------

    async def challenge(self, request):
        """``{"epoch", "node", "checker", "nonce", "n", "ticket", "signature"}``:
        check that an assigned checker asks (once the dashboard's key is
        known), derive the seed, multiply the seed's matrices and answer
        ``{"seed", "n", "root"}``. One challenge is computed at a time (they
        share the GPUs)."""
        try:
            data = await _bounded_json(request, MAX_CHALLENGE_REQUEST)
            epoch = _whole(data, "epoch", 0, 2**62)
            node = _whole(data, "node", 1, 2**62)
            checker = _whole(data, "checker", 0, 2**62)
            n = _whole(data, "n", challenges.MIN_N, challenges.MAX_N)
            nonce = data.get("nonce")
            if not isinstance(nonce, str) or len(nonce) != 32 or nonce.strip("0123456789abcdef"):
                raise BadChallenge("nonce must be 32 lowercase hex characters")
            if node != self.node_id:
                raise BadChallenge(f"this is node {self.node_id}, not node {node}")
        except BadChallenge as exc:
            return web.json_response({"detail": str(exc)}, status=400)
        if self.network_key:
            # Only a checker assigned to this node may make it compute.
            ask = {"epoch": epoch, "node": node, "checker": checker, "n": n, "nonce": nonce}
            try:
                try:
                    challenge_tickets.check(self.network_key, ask, data.get("ticket"), data.get("signature"))
                except challenge_tickets.UnknownIssuer:
                    # Perhaps the network's key was replaced: ask the dashboard
                    # (at most once a minute, so forged tickets cost nothing).
                    if not await self.refresh_network_key():
                        raise
                    challenge_tickets.check(self.network_key, ask, data.get("ticket"), data.get("signature"))
            except challenge_tickets.NotAllowed as exc:
                return web.json_response({"detail": str(exc)}, status=403)
        seed = challenges.derive_seed(epoch, node, checker, bytes.fromhex(nonce))
        if seed in self.answered_seeds:
            return web.json_response({"detail": "this challenge was answered already"}, status=409)
        if self.challenges_waiting >= MAX_CHALLENGES_WAITING:
            return web.json_response({"detail": "too many challenges at once"}, status=503)
        self.answered_seeds[seed] = None
        while len(self.answered_seeds) > REMEMBER_SEEDS:
            self.answered_seeds.popitem(last=False)
        if self._challenge_lock is None:
            self._challenge_lock = asyncio.Lock()
        self.challenges_waiting += 1
        try:
            async with self._challenge_lock:
                commitment = await self.computed(seed, n)
        finally:
            self.challenges_waiting -= 1
        self.commitments[seed] = commitment
        while len(self.commitments) > KEEP_COMMITMENTS:
            self.commitments.popitem(last=False)
        return web.json_response({"seed": seed.hex(), "n": n, "root": commitment.root.hex()})

    async def computed(self, seed: bytes, n: int) -> challenges.Commitment:
        """``compute_challenge`` in a worker thread: the health endpoint keeps answering meanwhile."""
        return await asyncio.to_thread(self.compute_challenge, seed, n)

    def compute_challenge(self, seed: bytes, n: int) -> challenges.Commitment:
        """The product of the seed's matrices, on this node's GPUs where
        torch with CUDA is installed, and its Merkle tree."""
        return challenges.commit(seed, challenges.product(seed, n))

    async def challenge_rows(self, request):
        """``{"seed", "rows": [i, ...]}``: each row of the committed product
        (base64 of its int32 little-endian bytes) with its Merkle proof."""
        try:
            data = await _bounded_json(request, MAX_CHALLENGE_REQUEST)
            seed = data.get("seed")
            if not isinstance(seed, str) or len(seed) != 64 or seed.strip("0123456789abcdef"):
                raise BadChallenge("seed must be 64 lowercase hex characters")
            commitment = self.commitments.get(bytes.fromhex(seed))
            if commitment is None:
                return web.json_response({"detail": "no product kept for this seed"}, status=404)
            rows = data.get("rows")
            if not isinstance(rows, list) or not 1 <= len(rows) <= challenges.MAX_ROWS:
                raise BadChallenge(f"rows must list 1 to {challenges.MAX_ROWS} row indices")
            for i in rows:
                if type(i) is not int or not 0 <= i < commitment.n:
                    raise BadChallenge(f"rows must be integers from 0 to {commitment.n - 1}")
        except BadChallenge as exc:
            return web.json_response({"detail": str(exc)}, status=400)
        return web.json_response({"seed": seed, "rows": [self.open_row(commitment, i) for i in rows]})

    def open_row(self, commitment: challenges.Commitment, i: int) -> dict:
        row, proof = commitment.open(i)
        return {"index": i, "values": challenges.b64(row), "proof": [h.hex() for h in proof]}

    async def serve(self) -> int:
        app = web.Application()
        self.add_routes(app)
        # An agent told to stop waits a moment for answers in progress, not
        # aiohttp's default minute.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)
        await self._runner.setup()
        await self._bind()
        return self.port

    async def _bind(self):
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        if not self.port:
            self.port = self._site._server.sockets[0].getsockname()[1]

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}/health"

    # --- telemetry -----------------------------------------------------------------

    def host_facts(self) -> dict:
        """CUDA driver version and disk space: sent with every heartbeat batch."""
        return host_facts(self.source, self.disk_path)

    def sample(self):
        s = self.source.sample()
        s["at"] = datetime.now(UTC).isoformat()
        self.buffer.append(s)
        if len(self.buffer) > MAX_BUFFER:  # dashboard unreachable for long: keep the newest
            del self.buffer[: len(self.buffer) - MAX_BUFFER]

    async def flush(self) -> bool:
        if not self.buffer:
            return True
        batch = self.buffer[:500]
        session = await self._session()
        try:
            async with session.post(
                f"{self.api_url}/api/agent/heartbeats/",
                json={"samples": batch, "facts": self.host_facts()},
                headers=self.headers,
            ) as r:
                if r.status == 201:
                    answer = await r.json(content_type=None)
                    if isinstance(answer, dict) and answer.get("facts_ignored"):
                        log.error("dashboard ignored this node's facts: %s", answer["facts_ignored"])
                    del self.buffer[: len(batch)]
                    self.posted += len(batch)
                    return True
                if r.status == 400:
                    log.error("dashboard refused a batch: %s", await r.text())
                    del self.buffer[: len(batch)]  # it will never be accepted
                    return False
                self.post_errors += 1
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.post_errors += 1
            log.warning("heartbeat post failed (%s); will retry", exc)
        return False

    # --- workloads -----------------------------------------------------------------

    async def start_workloads(self, stop: asyncio.Event) -> asyncio.Task | None:
        """Reconcile the node's leases on the engine until ``stop``; without an
        engine, tell the dashboard that each lease cannot run here."""
        if self.engine is None:
            return asyncio.create_task(self._without_engine(stop))
        if self.workloads is None:
            self.workloads = WorkloadReconciler(
                self.engine,
                api_url=self.api_url,
                node_id=self.node_id,
                headers=self.headers,
                session=await self._session(),
                reconcile_every=self.reconcile_every,
                log_every=self.log_every,
                gpus=host_has_nvidia_gpus(self.source),
            )
        return asyncio.create_task(self.workloads.run(stop))

    async def fetch_leases(self) -> list[dict] | None:
        """The leases the dashboard wants this node to run (``GET
        /api/agent/leases/``), each with a whole-number ``lease``; None when
        it did not answer with such a list."""
        session = await self._session()
        try:
            async with session.get(f"{self.api_url}/api/agent/leases/", headers=self.headers) as r:
                if r.status != 200:
                    return None
                body = await r.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None
        if not isinstance(body, dict) or body.get("node") != self.node_id or not isinstance(body.get("leases"), list):
            return None
        return [item for item in body["leases"] if isinstance(item, dict) and type(item.get("lease")) is int]

    async def report_leases(self, reports: list[dict]) -> set[int]:
        """Post lease reports (``POST /api/agent/leases/status/``), at most
        MAX_LEASES_PER_POST a request; returns the leases the dashboard
        settled (accepted, or refused for good with a 4xx)."""
        session = await self._session()
        settled: set[int] = set()
        for start in range(0, len(reports), MAX_LEASES_PER_POST):
            batch = reports[start : start + MAX_LEASES_PER_POST]
            try:
                async with session.post(
                    f"{self.api_url}/api/agent/leases/status/", json={"leases": batch}, headers=self.headers
                ) as r:
                    if r.status != 200:
                        log.warning("the dashboard refused a lease status report (%s)", r.status)
                        return settled
                    answer = await r.json(content_type=None)
            except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
                log.warning("lease status report failed (%s); will retry", str(exc) or type(exc).__name__)
                return settled
            results = answer.get("results") if isinstance(answer, dict) else None
            for result in results if isinstance(results, list) else []:
                code = result.get("status") if isinstance(result, dict) else None
                if type(code) is int and (code == 200 or 400 <= code < 500):
                    settled.add(result.get("lease"))
        return settled

    async def _without_engine(self, stop: asyncio.Event) -> None:
        """No engine: every lease the dashboard lists is reported failed, once,
        with NO_ENGINE as the reason (the dashboard then stops listing it)."""
        told: set[int] = set()
        while not stop.is_set():
            leases = await self.fetch_leases()
            if leases is not None:
                listed = {item["lease"] for item in leases}
                told &= listed
                new = sorted(listed - told)
                if new:
                    log.warning("lease(s) %s cannot run: %s", new, NO_ENGINE)
                    told |= await self.report_leases([_failed(lease, NO_ENGINE) for lease in new])
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.reconcile_every)
            except TimeoutError:
                pass

    async def run(self, stop: asyncio.Event | None = None):
        stop = stop or asyncio.Event()
        if self.node_id is None:
            await self.identify()
        if self._runner is None:
            await self.serve()
        workloads = await self.start_workloads(stop)
        try:
            await self._telemetry(stop)
        finally:
            if workloads is not None:
                workloads.cancel()
                await asyncio.gather(workloads, return_exceptions=True)

    async def _telemetry(self, stop: asyncio.Event):
        # The first post comes at a random point of the interval, so agents
        # started together (a fleet rebooted, a simulator) don't all post at
        # the same instants ever after: a burst of posts delays the health
        # answers checkers time as the node's latency.
        jitter = random.Random(self.seed).random() if self.seed is not None else random.random()
        next_post = time.monotonic() + self.post_every * jitter
        while not stop.is_set():
            self.sample()
            if time.monotonic() >= next_post:
                await self.flush()
                next_post = time.monotonic() + self.post_every
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.sample_every)
            except TimeoutError:
                pass
        await self.flush()

    async def close(self):
        if self.workloads:
            self.workloads.close()  # its containers keep running: the next agent adopts them
        if self._runner:
            await self._runner.cleanup()
        if self.session:
            await self.session.close()

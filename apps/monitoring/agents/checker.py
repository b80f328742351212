"""The checker agent: fetches its assignments, probes each node's endpoint
over the network through the epoch, and submits one signed report per
assignment before the epoch ends.

A probe is a TCP connect (availability: uptime), then ``GET /health``
answered with the node's GPU facts within the timeout (task completion);
the lowest round-trip time of the epoch's probes is the latency (a busy
checker can only add delay to a probe, never remove it, so the minimum is
what honest checkers agree on). A round trip runs from the request on the
wire to the answer's last byte: the checker's own wait for a connection is
not the node's latency, and a slow answer is timed again. The GPU facts are compared with the
declared spec.

On a rented node the assignment also names the rental's workload (its
lease): a probe then also checks that the lease is running and that each
endpoint the node's agent reported for it accepts a TCP connection, at most
``MAX_WORKLOAD_ENDPOINTS`` of them, concurrently, through the same address
policy as the node's endpoint; the share of probes that passed is the
report's ``workload_ppm``.

Once an epoch, after the node answered a probe, the checker times a download
of ``speed_test_kib`` KiB from the node's ``/speed`` route (the dashboard's
parameter, sent with the assignments): the report's ``download_mbps``, from
the answer's head to the body's last byte, so the round trip is not counted.

Everything a node sends is hostile until checked: the endpoint's address
must pass the agent's address policy (see ``addresses``) and is connected to
as checked; redirects are not followed; a health answer is read up to
``MAX_HEALTH_BYTES`` within the probe's deadline and must match the schema
``health_facts`` checks. A node that fails any of it is reported as not
answering, with the reason, and no node can stop the agent's other probes.
"""

import asyncio
import collections
import dataclasses
import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key

from .. import challenge, challenge_tickets, signing
from . import arrival
from .addresses import AddressPolicy, Refused, Target, parse_endpoint, parse_host_port

log = logging.getLogger(__name__)
PPM = 1_000_000
# An answer slower than this is timed again at once and the faster of the
# two counts: a node that is really slow is slow both times, while a stall
# of the checker's own host (a busy machine) rarely hits twice in a row.
# Without this, one stalled probe decided a report's latency and made an
# honest checker "incorrect" on a loaded host.
CONFIRM_SLOW_MS = 40
# How many times a slow answer is timed again (the fastest counts). On a host
# so loaded that its stalls often come twice in a row, one retry was not
# enough: single-probe reports then carried the host's stall, not the node's
# latency.
RETIMES = 2
REPORTS_PER_REQUEST = 500  # the dashboard takes at most 1,000 reports per batch request
# An honest health answer is a few hundred bytes; anything past this is
# read no further (a node must not fill the checker's memory).
MAX_HEALTH_BYTES = 64 * 1024
MAX_GPU_COUNT = 1024  # what a report can carry (gpu_count_seen)
MAX_GPU_NAME = 256
MAX_REASON = 200  # characters of a report's reason
# A rented node's workload: at most this many of the endpoints it lists are
# connected to per probe (the first ones), however many it lists; and at
# most WORKLOAD_CONNECTS such connections are open at once agent-wide, so
# nodes listing endpoints that never answer cannot use up its sockets.
MAX_WORKLOAD_ENDPOINTS = 16
WORKLOAD_CONNECTS = 256


# Compute challenges (docs/challenges.md): a commitment is a hundred bytes;
# an answer of rows is their base64 and proofs, read no further than that.
MAX_COMMITMENT_BYTES = 4 * 1024
MAX_MS = 3_600_000
# A checker's challenge comes with one of the node's first few answered
# probes, which one derived from (epoch, node, checker): the node's checkers
# probe at the same instants, and their challenges should not all queue at once.
CHALLENGE_SPREAD = 3
# A node that cannot be reached when its challenge starts (it went down after
# the probe) has shown nothing about its GPUs: its downtime is the probes'
# business, not a false spec. The challenge is tried again with a later
# answered probe, at most this many times an epoch; after that the report
# carries no challenge rather than a failure.
CHALLENGE_TRIES = 3
# What ``_post`` says when no connection could be opened at all.
NO_CONNECTION = "no connection"
# The speed test (``/speed``): like the challenge, it comes with one of the
# node's first few answered probes, chosen per checker, so the node's
# checkers do not share its link by downloading at the same moment. At most
# SPEED_TESTS_AT_ONCE downloads run at once agent-wide, so the checker's own
# link is not what is measured. A download slower than SPEED_SLOWEST_MBPS
# runs out of time: no figure rather than a wait without end.
SPEED_SPREAD = 3
SPEED_TESTS_AT_ONCE = 4
SPEED_SLOWEST_MBPS = 10
MAX_SPEED_TEST_KIB = 16 * 1024
MAX_MBPS = 1_000_000


def rows_answer_limit(n: int, k: int) -> int:
    per_row = 4 * ((4 * n + 2) // 3) + 100 + challenge.depth(n) * 70
    return k * per_row + 1024


class NotAnswered(Exception):
    """A health request that got no usable answer; the message says why."""


def health_facts(body: bytes) -> tuple[str, int]:
    """(GPU name, GPU count) from a health answer's body, or NotAnswered.

    Only the fields the report uses are read, each with its type and range:
    ``gpu_name`` a string, ``gpu_count`` an integer (not a boolean, not a
    float) from 0 to MAX_GPU_COUNT. Anything else (not JSON, not an object,
    a field missing or of another type) is no answer at all, for every
    checker alike, so honest checkers agree about a node that sends it.

    A node whose agent says its container engine is down (``"engine":
    "down"``) cannot run the workloads it is rented for: it does not count
    as answering. A node without an engine (``"none"``, or no field: older
    agents, simulated nodes) answers on its GPU facts alone."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep, a number too long
        raise NotAnswered("the health answer is not JSON") from None
    if not isinstance(data, dict):
        raise NotAnswered(f"the health answer is a JSON {type(data).__name__}, not an object")
    name, count = data.get("gpu_name"), data.get("gpu_count")
    if not isinstance(name, str) or len(name) > MAX_GPU_NAME:
        raise NotAnswered(f"gpu_name is not a string of at most {MAX_GPU_NAME} characters")
    if type(count) is not int or not 0 <= count <= MAX_GPU_COUNT:
        raise NotAnswered(f"gpu_count is not an integer from 0 to {MAX_GPU_COUNT}")
    if data.get("engine") == "down":
        raise NotAnswered("the node's container engine is down")
    return name, count


@dataclass
class Tally:
    probes: int = 0
    connected: int = 0
    answered: int = 0
    latencies: list = field(default_factory=list)
    gpu_name: str = ""
    gpu_count: int = 0
    spec_mismatch: int = 0
    spec_match: int = 0
    workload_probes: int = 0  # probes that checked a rented node's workload
    workload_ok: int = 0  # ... and found it running with every endpoint open
    next_k: int | None = None  # the next common probe instant of this node to take
    sampled: int = 0  # probes this agent scheduled for the node this epoch
    failures: collections.Counter = field(default_factory=collections.Counter)  # why probes failed
    challenge: dict | None = None  # the compute challenge run this epoch, as reported
    challenging: bool = False
    challenge_tries: int = 0  # challenges begun this epoch (see CHALLENGE_TRIES)
    download_mbps: int | None = None  # the speed test's figure, if it ran and succeeded
    speed_tried: bool = False  # one speed test per node and epoch

    def reason(self) -> str:
        """Why probes failed this epoch, most frequent first ("" if none did)."""
        text = "; ".join(f"{why} ({n}x)" for why, n in self.failures.most_common(3))
        return text[: MAX_REASON - 1] + "…" if len(text) > MAX_REASON else text


async def _refusal_detail(r) -> str:
    """``": <reason>"`` from a node's JSON refusal (``{"detail": ...}``), read
    no further than a few KiB and cut to the length a report's reason has;
    empty if there is none."""
    try:
        raw = await r.content.read(4096)
        detail = json.loads(raw).get("detail")
    except (ValueError, AttributeError, aiohttp.ClientError, TimeoutError):
        return ""
    if not isinstance(detail, str) or not detail:
        return ""
    return ": " + "".join(c for c in detail if c.isprintable())[:120]


async def _mark_sent(session, context, params) -> None:
    """aiohttp trace hook: note when a probe's request headers went out."""
    if isinstance(context.trace_request_ctx, dict):
        context.trace_request_ctx["sent"] = time.monotonic()


def probe_instant(epoch_start: float, epoch: int, node: int, k: int, probe_every: float) -> float:
    """The k-th moment (a Unix timestamp) at which every checker of ``node``
    probes it in ``epoch``.

    Nodes go up and down during an epoch: checkers that each probed at
    moments of their own would see different shares of it up and disagree
    about its uptime. At common moments they all see the same state. The
    offset, derived from (epoch, node), spreads the network's nodes over the
    interval, so a checker's probes don't come in bursts; it starts half an
    interval into the epoch, after checkers have picked up its assignments."""
    digest = hashlib.blake2b(f"{epoch}:{node}".encode(), digest_size=8).digest()
    offset = probe_every * (0.5 + int.from_bytes(digest, "big") / 2**64)
    return epoch_start + offset + k * probe_every


def load_or_create_key(path: Path | None) -> Ed25519PrivateKey:
    if path and path.exists():
        return load_pem_private_key(path.read_bytes(), password=None)
    key = signing.new_key()
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        path.chmod(0o600)
    return key


@dataclass
class CheckerAgent:
    api_url: str
    token: str
    key: Ed25519PrivateKey | None = None
    key_path: Path | None = None
    probe_every: float = 5.0
    timeout: float = 2.0
    concurrency: int = 64
    session: aiohttp.ClientSession | None = None
    # Which addresses probes may reach (default: the public internet and the
    # ranges AGENT_ALLOW_NETS opens).
    policy: AddressPolicy = field(default_factory=AddressPolicy.from_env)
    # A further say over which nodes to probe: (node id, endpoint) -> why not,
    # or None. The demo's simulator probes only the nodes it runs itself.
    target_filter: Callable[[int, str], str | None] | None = None

    def __post_init__(self):
        self.key = self.key or load_or_create_key(self.key_path)
        self.tallies: dict[tuple[int, int], Tally] = {}
        self.submitted: set[tuple[int, int]] = set()
        self.reports_sent = 0
        self.joined_at = time.time()  # reports only on epochs observed from their start
        self.rng = random.Random()
        self._probe_session: aiohttp.ClientSession | None = None
        self._connect_slots: asyncio.Semaphore | None = None
        # The dashboard's challenge parameters for the current epoch (n, rows,
        # slack, grace_ms), from the assignments answer; None: no challenges.
        self.challenge_config: dict | None = None
        # The speed test's size in bytes for the current epoch (the
        # dashboard's ``speed_test_kib``); 0: no speed test.
        self.speed_test_bytes = 0
        self._speed_slots: asyncio.Semaphore | None = None
        self._system_random = random.SystemRandom()

    @property
    def headers(self):
        return {"Authorization": f"Agent {self.token}"}

    async def _session(self):
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self.session

    async def _nodes_session(self):
        """The session that talks to nodes: apart from the dashboard's, so no
        header or cookie meant for the dashboard can ever reach a node, and
        none a node sets is kept."""
        if self._probe_session is None:
            timing = aiohttp.TraceConfig()
            timing.on_request_headers_sent.append(_mark_sent)
            self._probe_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                trust_env=False,
                trace_configs=[timing],
            )
        return self._probe_session

    async def _api(self, method: str, path: str, **kwargs):
        session = await self._session()
        async with session.request(method, f"{self.api_url}{path}", headers=self.headers, **kwargs) as r:
            try:
                body = await r.json(content_type=None)
            except ValueError:
                # An error page (a failing server, a proxy between restarts),
                # not an API answer: callers treat it like any refusal and retry.
                body = {"detail": f"HTTP {r.status} without a JSON answer"}
            return r.status, body

    async def register(self):
        """Identify, and register the signing key on first use (retrying until the dashboard answers)."""
        delay = 1.0
        while True:
            try:
                status, me = await self._api("GET", "/api/agent/me/")
                if status in (401, 403):
                    raise RuntimeError(f"the dashboard refused this token: {me}")
                if status == 200:
                    self.checker_id = me["checker"]["id"]
                    status, body = await self._api(
                        "POST", "/api/agent/key/", json={"public_key": signing.public_hex(self.key)}
                    )
                    if status != 200:
                        raise RuntimeError(f"key registration refused: {body}")
                    return me
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("dashboard unreachable (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)

    async def probe(self, epoch: int, a: dict, sem: asyncio.Semaphore):
        """One probe of node ``a["node"]`` (and of its workload, if it is
        rented). Whatever the node does, this returns: a failure is counted,
        with its reason, never raised."""
        tally = self.tallies.setdefault((epoch, a["node"]), Tally())
        if not a.get("endpoint"):
            # No endpoint yet (a demo node the simulator is about to run): not
            # a probe at all, so checkers that come before and after the
            # endpoint appears don't disagree about its uptime.
            return
        lease = a.get("workload")
        # A lease still being pulled or started, within its grace after the
        # rental was made, is not checked either way (the dashboard says so).
        checked = isinstance(lease, dict) and not lease.get("starting")
        async with sem:
            tally.probes += 1
            # The connect, the request and each re-timing have the timeout;
            # this bounds the whole probe whatever the node does. The
            # workload's connections run meanwhile, within the same bound.
            budget = self.timeout * (2 + RETIMES) + 1
            workload_why = None
            try:
                async with asyncio.timeout(budget):
                    if checked:
                        why, workload_why = await asyncio.gather(
                            self._guarded(self._probe(a, tally), a["node"]),
                            self._guarded(self._check_workload(a, lease), a["node"]),
                        )
                    else:
                        why = await self._guarded(self._probe(a, tally), a["node"])
            except TimeoutError:
                why = workload_why = f"the probe took over {budget:g} s"
            if why:
                tally.failures[why] += 1
            if checked:
                tally.workload_probes += 1
                if workload_why:
                    tally.failures[f"workload: {workload_why}"] += 1
                else:
                    tally.workload_ok += 1
        if not why and self._challenge_due(epoch, a, tally):
            await self._challenge_into(epoch, a)
        if not why and self._speed_due(epoch, a, tally):
            await self._speed_into(epoch, a)

    def _speed_due(self, epoch: int, a: dict, tally: Tally) -> bool:
        if not self._speed_missing(epoch, a):
            return False
        return self._turn_came("speed:", epoch, a["node"], tally, SPEED_SPREAD)

    def _speed_missing(self, epoch: int, a: dict) -> bool:
        t = self.tallies.get((epoch, a["node"]))
        if t is None or not t.answered or not self.speed_test_bytes or t.speed_tried:
            return False
        return not (self.target_filter and self.target_filter(a["node"], a["endpoint"]))

    async def _speed_into(self, epoch: int, a: dict) -> None:
        t = self.tallies[(epoch, a["node"])]
        t.speed_tried = True
        try:
            result = await self.speed_test(a)
        except Exception as exc:  # noqa: BLE001 - a node must never stop the agent
            log.warning("speed test of node %s failed: %r", a["node"], exc)
            result = f"the speed test failed ({type(exc).__name__})"
        if isinstance(result, str):
            t.failures[f"speed test: {result}"] += 1
        else:
            t.download_mbps = result

    async def speed_test(self, a: dict) -> int | str:
        """The node's download speed in whole Mbps, timed over a download of
        ``speed_test_bytes`` from its ``/speed`` route (through the same
        address checks as a probe), or why there is no figure."""
        size = self.speed_test_bytes
        try:
            target = parse_endpoint(a["endpoint"])
            if self.target_filter and (why := self.target_filter(a["node"], a["endpoint"])):
                raise Refused(why)
            ip = await self.policy.resolve(target.host, target.port, self.timeout)
        except Refused as exc:
            return f"refused: {exc}"
        target = dataclasses.replace(target, path=f"/speed?bytes={size}")
        if self._speed_slots is None:
            self._speed_slots = asyncio.Semaphore(SPEED_TESTS_AT_ONCE)
        async with self._speed_slots:
            return await self._timed_download(target, ip, size)

    async def _timed_download(self, target: Target, ip, size: int) -> int | str:
        session = await self._nodes_session()
        headers = {"Host": target.host_header, "Accept": "application/octet-stream", "Accept-Encoding": "identity"}
        timeout = self.timeout + size * 8 / (SPEED_SLOWEST_MBPS * 1e6)
        try:
            async with asyncio.timeout(timeout):
                async with session.get(
                    target.url_for(ip),
                    headers=headers,
                    allow_redirects=False,
                    auto_decompress=False,
                    server_hostname=target.host if target.scheme == "https" else None,
                    max_headers=100,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                ) as r:
                    if r.status != 200:
                        return f"HTTP {r.status}"
                    if r.content_length is not None and r.content_length != size:
                        return f"{r.content_length} bytes announced for {size} asked"
                    # The clock starts when the answer's head is in (the
                    # body follows it at once: the round trip is behind us)
                    # and stops at the last byte, not at the end of the
                    # stream that may follow it.
                    started = last = time.monotonic()
                    got = 0
                    while chunk := await r.content.readany():
                        last = time.monotonic()
                        got += len(chunk)
                        if got > size:
                            r.close()
                            return f"more than the {size} bytes asked"
        except TimeoutError:
            return f"no complete answer within {timeout:.3g} s"
        except aiohttp.ClientConnectorError:
            return NO_CONNECTION
        except aiohttp.ClientError as exc:
            return f"a broken answer ({type(exc).__name__})"
        if got != size:
            return f"{got} of the {size} bytes asked"
        return mbps(got, last - started)

    def _challenge_due(self, epoch: int, a: dict, tally: Tally) -> bool:
        if not self._challenge_missing(epoch, a):
            return False
        return self._turn_came("", epoch, a["node"], tally, CHALLENGE_SPREAD)

    def _turn_came(self, salt: str, epoch: int, node: int, tally: Tally, spread: int) -> bool:
        """Whether the node's answered probes reached the one (among its first
        ``spread``) after which this checker runs a once-an-epoch check:
        drawn per (check, epoch, node, checker), so a node's checkers do not
        all run it at the same instant."""
        me = getattr(self, "checker_id", 0) or 0
        digest = hashlib.blake2b(f"{salt}{epoch}:{node}:{me}".encode(), digest_size=8).digest()
        return tally.answered >= 1 + int.from_bytes(digest, "big") % spread

    def _challenge_missing(self, epoch: int, a: dict) -> bool:
        t = self.tallies.get((epoch, a["node"]))
        if t is None or not t.answered or self.challenge_config is None or t.challenge or t.challenging:
            return False
        if t.challenge_tries >= CHALLENGE_TRIES:
            return False
        return not (self.target_filter and self.target_filter(a["node"], a["endpoint"]))

    async def _challenge_into(self, epoch: int, a: dict) -> None:
        t = self.tallies[(epoch, a["node"])]
        t.challenging = True
        t.challenge_tries += 1
        try:
            result = await self.challenge(epoch, a, min(t.latencies))
        finally:
            t.challenging = False
        if not result["passed"]:
            t.failures[f"challenge: {result['reason']}"] += 1
            if result["reason"] == NO_CONNECTION and not result["root"]:
                return  # unreachable before committing: no verdict on the spec (see CHALLENGE_TRIES)
        t.challenge = result

    async def challenge(self, epoch: int, a: dict, rtt_ms: int) -> dict:
        """Run one compute challenge on the node of ``a``: what the report
        carries (docs/challenges.md), passed or failed with the reason.
        Whatever the node does, this returns."""
        cfg = self.challenge_config
        n, k = cfg["n"], min(cfg["rows"], cfg["n"])
        nonce = challenge.new_nonce()
        seed = challenge.derive_seed(epoch, a["node"], getattr(self, "checker_id", 0) or 0, nonce)
        try:
            tflops = Decimal(str(a.get("gpu_tflops") or "0"))
        except InvalidOperation:
            tflops = Decimal(0)
        deadline = challenge.deadline_seconds(
            n, tflops, a.get("gpu_count") or 1, cfg["slack"], rtt_ms / 1000, cfg["grace_ms"]
        )
        result = {
            "n": n,
            "nonce": nonce.hex(),
            "seed": seed.hex(),
            "root": "",
            "passed": False,
            "elapsed_ms": None,
            "deadline_ms": min(math.ceil(deadline * 1000), MAX_MS),
            "rows": [],
            "proofs": [],
            "reason": "",
        }
        try:
            async with asyncio.timeout(min(deadline, MAX_MS / 1000) + 3 * self.timeout + 5):
                why = await self._challenge(epoch, a, seed, nonce, n, k, result)
        except TimeoutError:
            why = "the challenge took too long"
        except Exception as exc:  # noqa: BLE001 - a node must never stop the agent
            log.warning("challenge of node %s failed: %r", a["node"], exc)
            why = f"the challenge failed ({type(exc).__name__})"
        result["passed"] = why is None
        result["reason"] = (why or "")[: challenge.MAX_REASON]
        return result

    async def _challenge(self, epoch, a, seed: bytes, nonce: bytes, n: int, k: int, result: dict) -> str | None:
        try:
            target = parse_endpoint(a["endpoint"])
            ip = await self.policy.resolve(target.host, target.port, self.timeout)
        except Refused as exc:
            return f"refused: {exc}"
        ask = {"epoch": epoch, "node": a["node"], "checker": getattr(self, "checker_id", 0) or 0, "n": n}
        ask["nonce"] = nonce.hex()
        # The dashboard's ticket for this assignment and this agent's
        # signature: the node computes for its assigned checkers only.
        signed = (
            {"ticket": a["ticket"], "signature": challenge_tickets.sign_request(self.key, ask)}
            if a.get("ticket")
            else {}
        )
        deadline_s = result["deadline_ms"] / 1000
        answer = await self._post(
            dataclasses.replace(target, path="/challenge"),
            ip,
            {**ask, **signed},
            MAX_COMMITMENT_BYTES,
            deadline_s + self.timeout,
        )
        if isinstance(answer, str):
            if answer.startswith("no complete answer"):
                return f"no commitment by the deadline of {result['deadline_ms']} ms"
            return answer
        elapsed_ms, body = answer
        result["elapsed_ms"] = min(elapsed_ms, MAX_MS)
        if not isinstance(body, dict):
            return "the commitment is not a JSON object"
        try:
            if challenge.hex32(body.get("seed"), "the answer's seed") != seed:
                return "the commitment is for another seed"
            if body.get("n") != n or type(body.get("n")) is not int:
                return f"the commitment is not for n = {n}"
            root = challenge.hex32(body.get("root"), "the root")
        except challenge.ChallengeFailed as exc:
            return str(exc)
        result["root"] = root.hex()
        if elapsed_ms > result["deadline_ms"]:
            return f"committed after {elapsed_ms} ms, past the deadline of {result['deadline_ms']} ms"
        # The rows are chosen only now, after the commitment.
        rows = self._system_random.sample(range(n), k)
        answer = await self._post(
            dataclasses.replace(target, path="/challenge/rows"),
            ip,
            {"seed": seed.hex(), "rows": rows},
            rows_answer_limit(n, k),
            self.timeout + 1,
        )
        if isinstance(answer, str):
            return f"rows: {answer}"
        openings = _openings(answer[1], rows, n)
        if isinstance(openings, str):
            return openings
        result["rows"] = rows
        result["proofs"] = [[h.hex() for h in proof] for _, _, proof in openings]
        try:
            await asyncio.to_thread(challenge.verify_openings, seed, n, root, openings)
        except challenge.ChallengeFailed as exc:
            return str(exc)
        return None

    async def _post(self, target: Target, ip, body: dict, limit: int, timeout: float):
        """(milliseconds from the request on the wire to the answer's last
        byte, the JSON answer) of a POST to the node, or why it failed."""
        session = await self._nodes_session()
        headers = {"Host": target.host_header, "Accept": "application/json", "Accept-Encoding": "identity"}
        marks: dict[str, float] = {}
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                async with session.post(
                    target.url_for(ip),
                    json=body,
                    headers=headers,
                    allow_redirects=False,
                    auto_decompress=False,
                    server_hostname=target.host if target.scheme == "https" else None,
                    max_headers=100,
                    trace_request_ctx=marks,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                ) as r:
                    if r.status != 200:
                        return f"HTTP {r.status}{await _refusal_detail(r)}"
                    if (r.content_length or 0) > limit:
                        return f"an answer over {limit} bytes"
                    sock = arrival.response_socket(r)
                    data = bytearray()
                    while chunk := await r.content.read(64 * 1024):
                        data += chunk
                        if len(data) > limit:
                            r.close()
                            return f"an answer over {limit} bytes"
                    # When the last byte arrived, not when this loop got to it (arrival.py).
                    sent = marks.get("sent", started)
                    done = arrival.answered_at(sock, sent)
        except TimeoutError:
            return f"no complete answer within {timeout:.3g} s"
        except aiohttp.ClientConnectorError:
            return NO_CONNECTION
        except aiohttp.ClientError as exc:
            return f"a broken answer ({type(exc).__name__})"
        elapsed_ms = math.ceil((done - sent) * 1000)
        try:
            return elapsed_ms, json.loads(data)
        except (ValueError, RecursionError):
            return "the answer is not JSON"

    @staticmethod
    async def _guarded(check, node: int) -> str | None:
        """``check``'s answer (why it failed, or None); anything it raises is
        a failure with the exception's name: one node must never stop the
        others' probes."""
        try:
            return await check
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.warning("probe of node %s failed: %r", node, exc)
            return f"the probe failed ({type(exc).__name__})"

    async def _check_workload(self, a: dict, lease: dict) -> str | None:
        """Why the rented node's workload fails this probe, or None: it passes
        when the lease is running and each endpoint listed for it (the first
        MAX_WORKLOAD_ENDPOINTS) accepts a TCP connection within the timeout."""
        if self.target_filter and (refusal := self.target_filter(a["node"], a["endpoint"])):
            # The filter says which nodes this agent probes: not this one's workload either.
            return f"refused: {refusal}"
        if lease.get("running") is not True:
            return "the lease is not running"
        ports, endpoints = lease.get("ports") or [], lease.get("endpoints") or []
        if not isinstance(ports, list) or not isinstance(endpoints, list):
            return "the lease's endpoints are not a list"
        if len(endpoints) < len(ports):
            return f"{len(ports) - len(endpoints)} of the lease's {len(ports)} ports have no endpoint"
        if not endpoints:
            # A lease that exposes no port has nothing to connect to: it passes
            # on "running" alone, which is the node's own word.
            return None
        listed = endpoints[:MAX_WORKLOAD_ENDPOINTS]
        results = await asyncio.gather(*(self._connect(e) for e in listed))
        failed = [f"{str(e)[:60]}: {why}" for e, why in zip(listed, results, strict=True) if why]
        if not failed:
            return None
        return failed[0] + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")

    async def _connect(self, endpoint) -> str | None:
        """A TCP connection to a workload endpoint (``host:port``) through the
        address policy, closed at once; why it failed, or None."""
        try:
            host, port = parse_host_port(endpoint)
            ip = await self.policy.resolve(host, port, self.timeout)
        except Refused as exc:
            return f"refused: {exc}"
        if self._connect_slots is None:
            self._connect_slots = asyncio.Semaphore(WORKLOAD_CONNECTS)
        async with self._connect_slots:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(str(ip), port), timeout=self.timeout)
                writer.close()
            except (OSError, TimeoutError):
                return "no connection"
        return None

    async def _probe(self, a: dict, tally: Tally) -> str | None:
        """Connect and ask; update ``tally``. Returns why the node did not
        answer, or None when it did."""
        try:
            target = parse_endpoint(a["endpoint"])
            if self.target_filter and (why := self.target_filter(a["node"], a["endpoint"])):
                raise Refused(why)
            ip = await self.policy.resolve(target.host, target.port, self.timeout)
        except Refused as exc:
            return f"refused: {exc}"
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(str(ip), target.port), timeout=self.timeout)
            writer.close()
        except (OSError, TimeoutError):
            return "no connection"
        tally.connected += 1
        answer = await self._timed_get(target, ip)
        if isinstance(answer, str):
            return answer
        latency_ms, (name, count) = answer
        for _ in range(RETIMES):
            if latency_ms <= CONFIRM_SLOW_MS:
                break
            again = await self._timed_get(target, ip)
            if isinstance(again, str):
                break  # the first answer stands; a node that answers only sometimes is slow, not down
            if again[0] < latency_ms:
                latency_ms, (name, count) = again
        matches = name[:80] == a.get("gpu_model") and count == a.get("gpu_count")
        # All of the answer's counts at once, after the last await: a probe cut
        # short never leaves an answer counted without its round trip.
        tally.latencies.append(latency_ms)
        tally.answered += 1
        tally.gpu_name, tally.gpu_count = name[:80], count
        if matches:
            tally.spec_match += 1
        else:
            tally.spec_mismatch += 1
        return None

    async def _timed_get(self, target: Target, ip) -> tuple[int, tuple[str, int]] | str:
        """(round trip in ms, the GPU facts) of one health request to ``ip``,
        or why it was not answered correctly within the timeout."""
        session = await self._nodes_session()
        headers = {"Host": target.host_header, "Accept": "application/json", "Accept-Encoding": "identity"}
        # The round trip is timed from the moment the request is on the wire
        # (see _mark_sent): waiting for a free connection or opening one is
        # the checker's own business and, on a busy host, its own delay.
        marks: dict[str, float] = {}
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                async with session.get(
                    target.url_for(ip),
                    headers=headers,
                    allow_redirects=False,
                    auto_decompress=False,
                    server_hostname=target.host if target.scheme == "https" else None,
                    max_headers=100,
                    trace_request_ctx=marks,
                ) as r:
                    if 300 <= r.status < 400:
                        return f"HTTP {r.status}: redirects are not followed"
                    if r.status != 200:
                        return f"HTTP {r.status}"
                    if (r.content_length or 0) > MAX_HEALTH_BYTES:
                        return f"a health answer over {MAX_HEALTH_BYTES // 1024} KiB"
                    sock = arrival.response_socket(r)
                    body = bytearray()
                    while chunk := await r.content.read(16 * 1024):
                        body += chunk
                        if len(body) > MAX_HEALTH_BYTES:
                            r.close()
                            return f"a health answer over {MAX_HEALTH_BYTES // 1024} KiB"
                    # When the last byte arrived, not when this loop got to it (arrival.py).
                    sent = marks.get("sent", started)
                    done = arrival.answered_at(sock, sent)
        except TimeoutError:
            return f"no complete answer within {self.timeout:g} s"
        except aiohttp.ClientError as exc:
            return f"a broken answer ({type(exc).__name__})"
        latency_ms = int((done - sent) * 1000)
        try:
            return latency_ms, health_facts(bytes(body))
        except NotAnswered as exc:
            return str(exc)

    async def _probe_later(self, epoch: int, a: dict, sem: asyncio.Semaphore, epoch_start: float, until: float):
        """Probe ``a`` at each of its common instants (see ``probe_instant``)
        that come before ``until`` (a Unix timestamp); later ones wait for the
        next round. One the agent is a little late for (the round began after
        it) is taken at once rather than skipped, so every checker that ran
        all epoch has the same number of probes of the node."""
        tally = self.tallies.setdefault((epoch, a["node"]), Tally())
        if tally.next_k is None:
            # First round of this epoch for the node: from the next instant on.
            first = probe_instant(epoch_start, epoch, a["node"], 0, self.probe_every)
            tally.next_k = max(0, math.ceil((time.time() - first) / self.probe_every))
        # Every instant before ``until``, not just the next one: a round that
        # starts late (a busy host, a slow dashboard) still takes all the
        # instants it covers, so a report rests on as many probes as the
        # epoch had instants, not on how many rounds the agent managed.
        while (at := probe_instant(epoch_start, epoch, a["node"], tally.next_k, self.probe_every)) < until:
            tally.next_k += 1
            tally.sampled += 1
            await asyncio.sleep(max(0.0, at - time.time()))
            await self.probe(epoch, a, sem)

    def measured(self, epoch: int, node: int) -> dict:
        """What this agent's probes of ``node`` found in ``epoch``: the report
        before it is signed."""
        t = self.tallies.get((epoch, node)) or Tally()
        probes = max(t.probes, 1)
        return {
            "epoch": epoch,
            "node": node,
            "probes": probes,
            "uptime_ppm": t.connected * PPM // probes,
            "task_ppm": t.answered * PPM // probes,
            "latency_ms": min(t.latencies) if t.latencies else None,
            "spec_ok": None if not t.answered else t.spec_match >= t.spec_mismatch,
            "gpu_name_seen": t.gpu_name,
            "gpu_count_seen": min(t.gpu_count, 1024),
            # Only a rented node's probes check a workload; signed when present.
            "workload_ppm": t.workload_ok * PPM // t.workload_probes if t.workload_probes else None,
            # The compute challenge, if one ran; signed when present.
            "challenge": t.challenge,
            # The speed test's figure (None: not measured); signed when present.
            "download_mbps": t.download_mbps,
        }

    def build_report(self, epoch: int, node: int) -> dict:
        t = self.tallies.get((epoch, node)) or Tally()
        report = self.measured(epoch, node)
        report["signature"] = signing.sign(self.key, report)
        if t.failures:
            # Why probes failed, for the node's operator: not signed and not
            # judged (the measured counts are the report).
            report["reason"] = t.reason()
            log.info("node %s, epoch %s: %s", node, epoch, report["reason"])
        return report

    async def submit(self, epoch: int, nodes: list[int]):
        """Send the epoch's reports in batch requests (see AgentReportBatch):
        one per REPORTS_PER_REQUEST, so a checker with many assignments (its
        peers jailed) stays under the server's limit per request."""
        todo = [n for n in nodes if (epoch, n) not in self.submitted]
        for i in range(0, len(todo), REPORTS_PER_REQUEST):
            chunk = todo[i : i + REPORTS_PER_REQUEST]
            try:
                status, body = await self._api(
                    "POST", "/api/agent/reports/batch/", json={"reports": [self.build_report(epoch, n) for n in chunk]}
                )
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("reports for epoch %s failed (%s); will retry", epoch, exc)
                return
            if status != 200:
                log.error("report batch refused: %s", body)
                return
            for node, result in zip(chunk, body["results"], strict=False):
                # Stored, already stored, or refused for good (epoch closed,
                # not assigned): either way it is not sent again.
                self.submitted.add((epoch, node))
                self.reports_sent += result["status"] == 201
                if result["status"] >= 400:
                    log.warning("report for node %s refused: %s", node, result.get("detail"))
        # Forget what can no longer be submitted.
        for key in [k for k in self.tallies if k[0] < epoch]:
            del self.tallies[key]

    async def cycle(self, sem: asyncio.Semaphore) -> float:
        """One probe round; returns seconds to sleep."""
        status, data = await self._api("GET", "/api/agent/assignments/")
        if status != 200:
            log.warning("assignments unavailable: %s", data)
            return self.probe_every
        epoch = data["epoch"]
        self.challenge_config = _challenge_config(data.get("challenge"))
        self.speed_test_bytes = _speed_test_bytes(data.get("speed_test_kib"))
        if not data.get("round_fixed", True):
            # The scheduler fixes the round when the epoch starts; ask again soon.
            return min(2.0, self.probe_every)
        assignments = data["assignments"]
        nodes = [a["node"] for a in assignments]
        # Reports of the previous epoch that did not go out in time.
        pending_prev = {(e, n) for (e, n) in self.tallies if e < epoch and (e, n) not in self.submitted}
        for e in sorted({e for e, _ in pending_prev}):
            await self.submit(e, [n for (pe, n) in pending_prev if pe == e])
        # ISO 8601 from the dashboard's API (the standard library reads its "Z").
        start, end = datetime.fromisoformat(data["epoch_start"]), datetime.fromisoformat(data["epoch_end"])
        # Report with a margin: a round can take a while on a busy network,
        # and a report that arrives after the epoch is settled is refused.
        # The epoch's probe instants end where that margin begins.
        margin = max(self.probe_every * 1.5, (end - start).total_seconds() / 3)
        round_started = time.monotonic()
        last_instant = end.timestamp() - margin
        until = min(last_instant, time.time() + self.probe_every)
        self._log_errors(
            await asyncio.gather(
                *(self._probe_later(epoch, a, sem, start.timestamp(), until) for a in assignments),
                return_exceptions=True,
            )
        )
        left = (end - datetime.now(UTC)).total_seconds()
        # Report once this round took the epoch's last instants (or, after a
        # stall, when the margin is all that is left).
        if until >= last_instant or left <= margin:
            joined_late = self.joined_at > start.timestamp() + self.probe_every / 2
            if joined_late:
                # Sit the epoch out when the agent saw only part of it: it
                # joined after the epoch's first probe instants (a fresh or
                # restarted agent, its first probes slowed by its own start-up).
                # A report judged against checkers that saw the whole epoch
                # risks a slash; missing one epoch only costs that epoch's
                # reward. (An agent that ran all epoch but managed only one
                # round on a busy host reports: probes happen at the same
                # instants for every checker, so its picture is not partial,
                # only thinner; sitting out cost whole epochs of consensus.)
                for key in [k for k in self.tallies if k[0] == epoch]:
                    del self.tallies[key]
                return max(left, 0) + 0.2 + self.rng.uniform(0, self.probe_every / 2)
            # A node whose instants all passed before this agent started (or
            # was assigned to it): one probe now, so its report rests on one.
            unsampled = [a for a in assignments if not self.tallies[(epoch, a["node"])].sampled]
            self._log_errors(
                await asyncio.gather(*(self.probe(epoch, a, sem) for a in unsampled), return_exceptions=True)
            )
            # A node that answered but whose turn for a challenge did not come
            # (a short epoch): challenged now, before the report.
            late = [a for a in assignments if self._challenge_missing(epoch, a)]
            self._log_errors(
                await asyncio.gather(*(self._challenge_into(epoch, a) for a in late), return_exceptions=True)
            )
            # Likewise a speed test whose turn did not come, within half of
            # what is left of the margin: a late report costs more than a
            # missing figure (many nodes that hold their downloads to the
            # timeout, four at a time, must not hold the reports back).
            untimed = [a for a in assignments if self._speed_missing(epoch, a)]
            budget = (end - datetime.now(UTC)).total_seconds() - margin / 2
            if untimed and budget > 0:
                try:
                    async with asyncio.timeout(budget):
                        self._log_errors(
                            await asyncio.gather(*(self._speed_into(epoch, a) for a in untimed), return_exceptions=True)
                        )
                except TimeoutError:
                    log.warning("epoch %s: speed tests cut short to report in time", epoch)
            # Last round of this epoch: report now so consensus has us.
            await self.submit(epoch, nodes)
            # Into the next epoch at a random moment of its first interval, so
            # checkers don't all fire (and queue behind each other) at once.
            return max(left, 0) + 0.2 + self.rng.uniform(0, self.probe_every / 2)
        # Keep the cadence: the round itself took part of the interval.
        return max(0.0, self.probe_every - (time.monotonic() - round_started))

    @staticmethod
    def _log_errors(results: list) -> None:
        """Probes catch what nodes do to them; anything that still escapes
        one probe is logged, and the round goes on."""
        for r in results:
            if isinstance(r, Exception):
                log.error("a probe failed unexpectedly: %r", r, exc_info=r)

    async def run(self, stop: asyncio.Event | None = None):
        stop = stop or asyncio.Event()
        await self.register()
        sem = asyncio.Semaphore(self.concurrency)
        while not stop.is_set():
            try:
                wait = await self.cycle(sem)
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.warning("dashboard unreachable (%s); retrying", exc)
                wait = self.probe_every
            except Exception:  # noqa: BLE001 - a bad round costs a round, never the agent
                log.exception("round failed; retrying")
                wait = self.probe_every
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                pass

    async def close(self):
        if self.session:
            await self.session.close()
        if self._probe_session:
            await self._probe_session.close()


def _challenge_config(value) -> dict | None:
    """The dashboard's challenge parameters, or None when it sent none (or
    something else): no challenge is run then."""
    if not isinstance(value, dict):
        return None
    bounds = {"n": (challenge.MIN_N, challenge.MAX_N), "rows": (1, challenge.MAX_ROWS), "slack": (1, 100)}
    bounds["grace_ms"] = (0, 60_000)
    for key, (lo, hi) in bounds.items():
        if type(value.get(key)) is not int or not lo <= value[key] <= hi:
            return None
    return {key: value[key] for key in bounds}


def _speed_test_bytes(value) -> int:
    """The speed test's size in bytes from the dashboard's ``speed_test_kib``;
    0 (no speed test) when it sent none, 0, or something else."""
    if type(value) is not int or not 0 <= value <= MAX_SPEED_TEST_KIB:
        return 0
    return value * 1024


def mbps(n_bytes: int, seconds: float) -> int:
    """Whole megabits per second, from 0 to MAX_MBPS; a transfer too quick
    for the clock to see counts as the maximum."""
    if seconds <= 0:
        return MAX_MBPS
    return max(0, min(MAX_MBPS, int(n_bytes * 8 / seconds / 1e6)))


def _openings(body, rows: list[int], n: int) -> list[tuple[int, bytes, list[bytes]]] | str:
    """The rows and proofs of a node's answer, each checked for shape (the
    rows asked for, in order; rows of 4 n bytes; proofs of depth(n) hashes),
    or why the answer is refused."""
    if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
        return "the rows answer is not an object with a list of rows"
    items = body["rows"]
    if len(items) != len(rows):
        return f"{len(items)} rows answered for {len(rows)} asked"
    out = []
    try:
        for i, item in zip(rows, items, strict=True):
            if not isinstance(item, dict) or item.get("index") != i or type(item.get("index")) is not int:
                return f"the answer does not open row {i} where asked"
            values = challenge.unb64(item.get("values"), 4 * n)
            if len(values) != 4 * n:
                return f"row {i} has {len(values)} bytes, not {4 * n}"
            proof = item.get("proof")
            if not isinstance(proof, list) or len(proof) != challenge.depth(n):
                length = len(proof) if isinstance(proof, list) else "no"
                return f"row {i}'s proof has {length} hashes, not {challenge.depth(n)}"
            out.append((i, values, [challenge.hex32(h, f"row {i}'s proof") for h in proof]))
    except challenge.ChallengeFailed as exc:
        return str(exc)
    return out

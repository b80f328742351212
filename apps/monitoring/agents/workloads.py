"""The provider agent's workloads: renters' containers on this node.

A reconciler, like a cluster's node agent. Every pass it lists the
containers it labelled on the engine (``aethir.node=<node>``,
``aethir.lease=<lease>``), reads the leases this node should run now from the
dashboard (``GET /api/agent/leases/``), starts what is missing (pulling the
image if it is absent), stops and removes what is no longer wanted, and
reports each lease's state, endpoints and log tail
(``POST /api/agent/leases/status/``), only what changed since the last
accepted report.

It talks to the engine through the Docker Engine API (the ``docker`` SDK):
Docker, or Podman's Docker-compatible service. The SDK blocks, so every
engine call runs on a small thread pool of its own with a timeout: a hung
engine costs a pass, never the agent's event loop, its health endpoint or
its telemetry, and it never takes the threads the event loop's own work
(name resolution) runs on.

What it never does: restart a container that exited by itself (the
renter's own exit, reported with its code), start a lease twice (the
container's name carries the node and the lease, and an agent that
restarts adopts the containers it finds), remove anything while the
dashboard does not answer (the lease list is unknown, not empty), log a
lease's environment (it holds the renter's secrets).
"""

import asyncio
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import docker
import requests
from docker.errors import APIError, DockerException, NotFound
from docker.types import DeviceRequest, Ulimit

from .daemon_pool import DaemonThreadPool

log = logging.getLogger(__name__)

NODE_LABEL = "aethir.node"
LEASE_LABEL = "aethir.lease"
STATES = ("pulling", "starting", "running", "exited", "failed", "removed")
LOG_TAIL_BYTES = 64 * 1024
# Lines asked of the engine for a tail; the bytes kept are cut to LOG_TAIL_BYTES.
LOG_TAIL_LINES = 2_000
REASON_CHARS = 500
# A status post stays well under the dashboard's request body limit (2.5 MB):
# a log tail of control bytes is six times longer as JSON.
MAX_POST_BYTES = 1_000_000
# The dashboard takes at most this many lease reports a request.
MAX_LEASES_PER_POST = 16
# Capabilities a container keeps (all others dropped): enough for images that
# start as root and drop to a user of their own (sshd, gosu, su-exec), own
# their files and bind a port below 1024 inside the container.
DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL", "NET_BIND_SERVICE")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class EngineDown(Exception):
    """The engine did not answer: not running, not reachable, or hung."""


class StartRefused(Exception):
    """The engine would not create or start a lease's container; the
    message is the reason reported (no secret is ever in it)."""


def image_not_found(image: str) -> str:
    return f"image not found: {image}"[:REASON_CHARS]


@dataclass(frozen=True)
class Lease:
    """One lease the dashboard wants this node to run. ``env`` holds the
    renter's values, secrets included: it is left out of the repr, and the
    reconciler never logs it."""

    lease: int
    image: str
    command: tuple[str, ...] | None
    env: tuple[tuple[str, str], ...] = field(repr=False)
    ports: tuple[int, ...]
    gpu_count: int
    cpus: int
    memory_mb: int

    @classmethod
    def parse(cls, item) -> "Lease":
        """A lease from the dashboard's list, or ValueError naming what is
        wrong (never a value of the environment)."""
        if not isinstance(item, dict):
            raise ValueError("a lease is not a JSON object")
        lease = item.get("lease")
        if type(lease) is not int or lease < 1:
            raise ValueError("lease is not a positive whole number")
        image = item.get("image")
        if not isinstance(image, str) or not 0 < len(image) <= 512 or any(c.isspace() for c in image):
            raise ValueError("image is not a name of 1 to 512 characters without spaces")
        command = item.get("command")
        if command is not None:
            if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
                raise ValueError("command is not a non-empty list of strings")
            command = tuple(command)
        env = item.get("env") or {}
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and ENV_NAME.fullmatch(k) and isinstance(v, str) for k, v in env.items()
        ):
            raise ValueError("env is not an object of variable names to strings")
        if any("\x00" in v for v in env.values()):
            raise ValueError("an env value holds a NUL character")
        ports = item.get("ports") or []
        if not isinstance(ports, list) or not all(type(p) is int and 0 < p < 65536 for p in ports):
            raise ValueError("ports is not a list of port numbers (1 to 65535)")
        numbers = {}
        for name, least in (("gpu_count", 0), ("cpus", 1), ("memory_mb", 6)):
            value = item.get(name)
            if type(value) is not int or value < least:
                raise ValueError(f"{name} is not a whole number of at least {least}")
            numbers[name] = value
        return cls(
            lease=lease,
            image=image,
            command=command,
            env=tuple(sorted(env.items())),
            ports=tuple(sorted(set(ports))),
            **numbers,
        )


@dataclass(frozen=True)
class LeaseStatus:
    """What the agent reports of one lease (``POST /api/agent/leases/status/``)."""

    lease: int
    state: str
    exit_code: int | None = None
    reason: str = ""
    endpoints: tuple[tuple[str, str], ...] = ()
    log_tail: str = ""

    def as_json(self) -> dict:
        return {
            "lease": self.lease,
            "state": self.state,
            "exit_code": self.exit_code,
            "reason": self.reason[:REASON_CHARS],
            "endpoints": dict(self.endpoints),
            "log_tail": self.log_tail,
        }


@dataclass
class EngineSettings:
    """How the agent runs containers. ``url`` is the engine's socket
    (``unix:///run/docker.sock``, ``unix:///run/podman/podman.sock``,
    ``tcp://...``). ``runtime`` is passed with each container (Docker honours
    it; Podman's compat API ignores it: start Podman's service with
    ``--runtime``). Ports are published on ``publish_host``; an endpoint is
    reported with that address, or ``advertise_host`` when it is a wildcard.
    ``gpus``: attach NVIDIA GPUs with a device request (None: only where
    this host has them)."""

    url: str
    runtime: str | None = None
    publish_host: str = "127.0.0.1"
    advertise_host: str | None = None
    gpus: bool | None = None
    pids_limit: int = 1024
    nofile: int = 1024
    nproc: int = 1024
    cap_add: tuple[str, ...] = DEFAULT_CAPS
    log_max_size: str | None = "1m"
    call_timeout: float = 10.0
    pull_timeout: float = 600.0
    stop_grace: int = 3
    threads: int = 8


def host_has_nvidia_gpus(telemetry_source=None) -> bool:
    """NVML answered for the agent's telemetry, or ``nvidia-smi`` is installed."""
    return type(telemetry_source).__name__ == "NvmlGpus" or shutil.which("nvidia-smi") is not None


def cut_tail(raw: bytes, limit: int = LOG_TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a log as text: decoded with errors
    replaced, starting on a character boundary, NUL characters replaced (a
    database text column refuses them), at most ``limit`` bytes as UTF-8."""
    raw = raw[-limit:]
    start = 0
    while start < min(4, len(raw)) and 0x80 <= raw[start] < 0xC0:  # inside a character cut in two
        start += 1
    text = raw[start:].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    encoded = text.encode()
    if len(encoded) > limit:  # replacement characters are longer than the bytes they replace
        encoded = encoded[-limit:]
        start = 0
        while 0x80 <= encoded[start] < 0xC0:
            start += 1
        text = encoded[start:].decode()
    return text


def _endpoint(ip: str, port, fallback: str) -> str:
    host = fallback if ip in WILDCARD_HOSTS else ip
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _explain(exc: Exception) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return " ".join(str(text).split())


@dataclass
class _Tail:
    container: str
    text: str
    at: float
    state: str


class WorkloadReconciler:
    """Runs the node's leases on the container engine (see the module's doc).

    ``run(stop)`` reconciles every ``reconcile_every`` seconds (sooner when a
    start or a removal finishes) until ``stop`` is set. A log tail is read
    and reported at most every ``log_every`` seconds per lease (and when its
    state changes), so a container writing megabytes a second costs one
    bounded read and one post per interval."""

    def __init__(
        self,
        settings: EngineSettings,
        *,
        api_url: str,
        node_id: int,
        headers: dict,
        session: aiohttp.ClientSession,
        reconcile_every: float = 2.0,
        log_every: float = 5.0,
        gpus: bool = False,
    ):
        self.settings = settings
        self.api_url = api_url
        self.node_id = node_id
        self.headers = headers
        self.session = session
        self.reconcile_every = reconcile_every
        self.log_every = log_every
        self.gpus = settings.gpus if settings.gpus is not None else gpus
        self.labels_filter = {"label": [f"{NODE_LABEL}={node_id}"]}
        self.engine = "down"  # "ok" once it answers
        self.current: dict[int, LeaseStatus] = {}
        self.accepted: dict[int, LeaseStatus] = {}
        self.failed: dict[int, LeaseStatus] = {}  # start failures: not tried again for the same lease
        self.tails: dict[int, _Tail] = {}
        self.exits: dict[str, dict] = {}  # container id -> State of an exited container
        self.ops: dict[int, asyncio.Task] = {}
        self.engine_calls = 0
        self.passes = 0
        self.posts = 0
        self._pool = DaemonThreadPool(max_workers=settings.threads, thread_name_prefix="engine")
        self._client: docker.DockerClient | None = None
        self._pull_client: docker.DockerClient | None = None
        self._wake = asyncio.Event()
        self._lock = threading.Lock()
        self._closed = False  # set by close(): a pull or a log read in a thread stops at its next chunk
        self._warned_dashboard = False
        self.listed: set[int] = set()  # every lease id the last list named, valid or not
        self._cpu_count = os.cpu_count() or 1

    @property
    def advertised_host(self) -> str:
        """The address endpoints are reported with when a port is published on a wildcard."""
        s = self.settings
        if s.advertise_host:
            return s.advertise_host
        return s.publish_host if s.publish_host not in WILDCARD_HOSTS else socket.gethostname()

    # --- the engine, from threads ------------------------------------------------

    def _count(self, response, *args, **kwargs):
        with self._lock:
            self.engine_calls += 1

    def _new_client(self, timeout: float) -> docker.DockerClient:
        client = docker.DockerClient(base_url=self.settings.url, timeout=timeout)
        client.api.hooks["response"].append(self._count)
        return client

    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = self._new_client(self.settings.call_timeout)
        return self._client

    def pull_client(self) -> docker.DockerClient:
        if self._pull_client is None:
            self._pull_client = self._new_client(self.settings.pull_timeout)
        return self._pull_client

    async def call(self, fn: Callable, *args, timeout: float | None = None):
        """``fn(*args)`` on the engine's threads; EngineDown if the engine
        does not answer within the timeout or refuses the connection."""
        timeout = timeout or self.settings.call_timeout + 2
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool, fn, *args), timeout)
        except APIError:
            raise  # the engine answered: an error about this request, not about the engine
        except TimeoutError:
            raise EngineDown(f"no answer within {timeout:.0f} s") from None
        except (requests.exceptions.RequestException, DockerException) as exc:
            # Refused, reset or timed out, or the client could not even ask the engine's version.
            raise EngineDown(_explain(exc)) from None

    def _list(self) -> list[dict]:
        return self.client().api.containers(all=True, filters=self.labels_filter)

    def _inspect_state(self, container_id: str) -> dict:
        return self.client().api.inspect_container(container_id)["State"]

    def _logs(self, container_id: str) -> bytes:
        """The end of a container's output, holding at most 2 x LOG_TAIL_BYTES
        in memory and reading for at most the call timeout."""
        stream = self.client().api.logs(
            container_id, stdout=True, stderr=True, stream=True, follow=False, tail=LOG_TAIL_LINES
        )
        buf = bytearray()
        deadline = time.monotonic() + self.settings.call_timeout
        try:
            for chunk in stream:
                if self._closed:
                    break
                buf += chunk
                if len(buf) > 2 * LOG_TAIL_BYTES:
                    del buf[: len(buf) - LOG_TAIL_BYTES]
                if time.monotonic() > deadline:
                    break
        finally:
            stream.close()
        return bytes(buf)

    def _image_present(self, image: str) -> bool:
        try:
            self.client().api.inspect_image(image)
            return True
        except NotFound:
            return False

    def _pull(self, image: str) -> str | None:
        """Pull ``image``; None when it is present after, else the engine's reason."""
        try:
            for event in self.pull_client().api.pull(image, stream=True, decode=True):
                if self._closed:
                    raise EngineDown("the agent is closing")
                if isinstance(event, dict) and event.get("error"):
                    return _explain(Exception(event["error"]))
        except APIError as exc:  # Docker answers a missing image or registry with an error status
            return _explain(exc)
        return None if self._image_present(image) else "the engine pulled nothing"

    def _create_and_start(self, lease: Lease) -> None:
        name = f"aethir-node{self.node_id}-lease{lease.lease}"
        try:
            container = self.client().containers.create(
                lease.image, list(lease.command or []) or None, **self._spec(lease, name)
            )
        except APIError as exc:
            text = _explain(exc)
            if exc.status_code == 409 or "already in use" in text:
                return  # made by an earlier attempt: the next pass adopts it
            if isinstance(exc, NotFound) and "image" in text.lower():
                raise StartRefused(image_not_found(lease.image)) from None
            raise StartRefused(f"the engine refused to create the container: {text}"[:REASON_CHARS]) from None
        try:
            container.start()
        except APIError as exc:
            text = _explain(exc)
            try:
                container.remove(force=True)
            except APIError:
                pass
            raise StartRefused(f"the container did not start: {text}"[:REASON_CHARS]) from None

    def _spec(self, lease: Lease, name: str) -> dict:
        s = self.settings
        spec = {
            "name": name,
            "labels": {NODE_LABEL: str(self.node_id), LEASE_LABEL: str(lease.lease)},
            "environment": [f"{k}={v}" for k, v in lease.env],
            "ports": {f"{p}/tcp": (s.publish_host, None) for p in lease.ports},
            "network_mode": "bridge",
            "cap_drop": ["ALL"],
            "cap_add": list(s.cap_add) or None,
            "security_opt": ["no-new-privileges"],
            "pids_limit": s.pids_limit,
            "ulimits": [
                Ulimit(name="nofile", soft=s.nofile, hard=s.nofile),
                Ulimit(name="nproc", soft=s.nproc, hard=s.nproc),
            ],
            "nano_cpus": min(lease.cpus, self._cpu_count) * 1_000_000_000,
            "mem_limit": f"{lease.memory_mb}m",
            "memswap_limit": f"{lease.memory_mb}m",
            "restart_policy": {"Name": "no"},
        }
        if s.log_max_size:
            spec["log_config"] = {"type": "json-file", "config": {"max-size": s.log_max_size}}
        if s.runtime:
            spec["runtime"] = s.runtime
        if self.gpus and lease.gpu_count > 0:
            spec["device_requests"] = [DeviceRequest(count=lease.gpu_count, capabilities=[["gpu"]])]
        return spec

    def _stop_and_remove(self, container_id: str, running: bool) -> bytes:
        """Stop (``stop_grace`` seconds, then killed), keep the final log tail, remove."""
        api = self.client().api
        tail = b""
        try:
            if running:
                api.stop(container_id, timeout=self.settings.stop_grace)
            tail = self._logs(container_id)
            api.remove_container(container_id, force=True)
        except NotFound:
            pass  # gone already
        return tail

    # --- the dashboard -----------------------------------------------------------

    async def desired(self) -> dict[int, Lease] | None:
        """The leases this node should run now, or None when the dashboard
        did not answer with a valid list (then nothing is started or removed)."""
        try:
            async with self.session.get(f"{self.api_url}/api/agent/leases/", headers=self.headers) as r:
                if r.status != 200:
                    self._dashboard_trouble(f"it answered {r.status}")
                    return None
                body = await r.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            self._dashboard_trouble(_explain(exc) or type(exc).__name__)
            return None
        if not isinstance(body, dict) or not isinstance(body.get("leases"), list):
            self._dashboard_trouble("its answer has no list of leases")
            return None
        if body.get("node") != self.node_id:
            self._dashboard_trouble(f"its answer is for node {body.get('node')!r}, not {self.node_id}")
            return None
        self._warned_dashboard = False
        leases = {}
        self.listed = set()
        for item in body["leases"]:
            try:
                lease = Lease.parse(item)
            except ValueError as exc:
                lease_id = item.get("lease") if isinstance(item, dict) else None
                log.error("the dashboard sent an invalid lease %r: %s", lease_id, exc)
                if type(lease_id) is int and lease_id > 0:
                    self.listed.add(lease_id)
                    self.current[lease_id] = LeaseStatus(lease_id, "failed", reason=f"invalid lease: {exc}")
                continue
            leases[lease.lease] = lease
            self.listed.add(lease.lease)
        return leases

    def _dashboard_trouble(self, what: str) -> None:
        if not self._warned_dashboard:
            log.warning("could not read this node's leases from the dashboard (%s): containers left as they are", what)
            self._warned_dashboard = True

    async def report(self) -> None:
        """Post the leases whose status changed since the last accepted report."""
        changed = [s for lease, s in sorted(self.current.items()) if self.accepted.get(lease) != s]
        batch: list[LeaseStatus] = []
        size = 0
        for status in changed:
            entry_size = len(json.dumps(status.as_json()))
            if batch and (size + entry_size > MAX_POST_BYTES or len(batch) == MAX_LEASES_PER_POST):
                if not await self._post(batch):
                    return
                batch, size = [], 0
            batch.append(status)
            size += entry_size
        if batch:
            await self._post(batch)

    async def _post(self, batch: list[LeaseStatus]) -> bool:
        body = {"leases": [s.as_json() for s in batch]}
        try:
            async with self.session.post(
                f"{self.api_url}/api/agent/leases/status/", json=body, headers=self.headers
            ) as r:
                self.posts += 1
                if r.status != 200:
                    text = (await r.text())[:300]
                    log.warning("the dashboard refused a lease status report (%s): %s", r.status, text)
                    if 400 <= r.status < 500 and r.status not in (401, 403, 408, 429):
                        # It will never accept these: send only later changes.
                        self._settle(batch, {}, missing={"status": r.status, "detail": text})
                    return False
                answer = await r.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.warning("lease status report failed (%s); will retry", _explain(exc) or type(exc).__name__)
            return False
        results = answer.get("results") if isinstance(answer, dict) else None
        self._settle(batch, {r.get("lease"): r for r in results or [] if isinstance(r, dict)})
        return True

    def _settle(self, batch: list[LeaseStatus], results: dict, missing: dict | None = None) -> None:
        """Record what the dashboard answered per lease. A 4xx for a lease is
        final too (logged; only a later change is sent again); a lease with
        no answer is sent again next pass."""
        for status in batch:
            result = results.get(status.lease, missing)
            if result is None:
                continue
            code = result.get("status")
            if code != 200:
                if type(code) is not int or not 400 <= code < 500:
                    continue
                log.warning("the dashboard refused lease %s's %s: %s", status.lease, status.state, result.get("detail"))
            self.accepted[status.lease] = status
            if status.state == "removed" and self.current.get(status.lease) == status:
                self._forget(status.lease)

    def _forget(self, lease_id: int) -> None:
        for table in (self.current, self.accepted, self.failed, self.tails):
            table.pop(lease_id, None)

    # --- reconciling -------------------------------------------------------------

    async def reconcile_once(self) -> None:
        """One pass: observe, act, report."""
        self.passes += 1
        try:
            containers = await self.call(self._list)
        except (EngineDown, APIError) as exc:
            self._engine_down(exc)
            return
        self._engine_up()
        desired = await self.desired()
        if desired is None:
            return
        found: dict[int, dict] = {}
        for c in containers:
            try:
                lease_id = int((c.get("Labels") or {})[LEASE_LABEL])
            except (KeyError, TypeError, ValueError):
                continue
            if lease_id in found:
                c = self._duplicate(lease_id, found[lease_id], c)
            found[lease_id] = c
        observe = []
        for lease_id, lease in desired.items():
            if lease_id in self.ops:
                continue
            c = found.get(lease_id)
            if c is None:
                if lease_id in self.failed:
                    self.current[lease_id] = self.failed[lease_id]
                else:
                    self._spawn(lease_id, self._start(lease))
            elif c.get("State") in ("created", "configured"):
                self._spawn(lease_id, self._start_made(lease, c["Id"]))  # made, never started: an agent stopped
            else:
                observe.append((lease, c))
        for lease_id, c in found.items():
            if lease_id not in desired and lease_id not in self.ops:
                self._spawn(lease_id, self._remove(lease_id, c))
        for lease_id in list(self.current):
            gone = lease_id not in self.listed and lease_id not in found and lease_id not in self.ops
            if gone and self.current[lease_id].state != "removed":
                self._forget(lease_id)  # never ran here (failed to start): nothing to remove or report
        if observe:
            await asyncio.gather(*(self._observe(lease, c) for lease, c in observe))
        await self.report()

    def _duplicate(self, lease_id: int, a: dict, b: dict) -> dict:
        """Two containers for one lease (only by hand): keep the running or
        the newer one, remove the other."""
        keep, extra = sorted((a, b), key=lambda c: (c.get("State") == "running", c.get("Created") or 0), reverse=True)
        log.warning("two containers for lease %s; removing %s", lease_id, extra["Id"][:12])
        asyncio.ensure_future(self._quietly(self.call(self._stop_and_remove, extra["Id"], True)))
        return keep

    @staticmethod
    async def _quietly(coro):
        try:
            await coro
        except Exception as exc:
            log.warning("engine call failed: %s", exc)

    def _engine_down(self, exc: Exception) -> None:
        if self.engine != "down" or self.passes == 1:
            log.warning(
                "container engine %s not answering (%s): workloads are left as they are and not reported "
                "until it answers",
                self.settings.url,
                _explain(exc),
            )
        self.engine = "down"

    def _engine_up(self) -> None:
        if self.engine != "ok":
            log.info("container engine %s answering: reconciling this node's workloads", self.settings.url)
        self.engine = "ok"

    def _spawn(self, lease_id: int, coro) -> None:
        task = asyncio.create_task(coro)
        self.ops[lease_id] = task

        def done(t):
            if self.ops.get(lease_id) is t:
                del self.ops[lease_id]
            if not t.cancelled() and t.exception() is not None:
                log.error("workload operation for lease %s failed: %r", lease_id, t.exception())
            self._wake.set()

        task.add_done_callback(done)

    def _set(self, lease_id: int, state: str, **fields) -> LeaseStatus:
        status = LeaseStatus(lease_id, state, **fields)
        self.current[lease_id] = status
        return status

    def _fail(self, lease_id: int, reason: str) -> None:
        self.failed[lease_id] = self._set(lease_id, "failed", reason=reason[:REASON_CHARS])

    async def _start(self, lease: Lease) -> None:
        try:
            if not await self.call(self._image_present, lease.image):
                self._set(lease.lease, "pulling")
                self._wake.set()
                why = await self.call(self._pull, lease.image, timeout=self.settings.pull_timeout + 5)
                if why is not None:
                    log.warning("lease %s: could not pull %s: %s", lease.lease, lease.image, why)
                    self._fail(lease.lease, image_not_found(lease.image))
                    return
            self._set(lease.lease, "starting")
            self._wake.set()
            await self.call(self._create_and_start, lease, timeout=2 * self.settings.call_timeout + 5)
        except StartRefused as exc:
            log.warning("lease %s: %s", lease.lease, exc)
            self._fail(lease.lease, str(exc))
        except EngineDown as exc:
            log.warning("lease %s not started: the engine did not answer (%s)", lease.lease, exc)
        except APIError as exc:
            self._fail(lease.lease, f"the engine refused: {_explain(exc)}")

    async def _start_made(self, lease: Lease, container_id: str) -> None:
        def start():
            try:
                self.client().api.start(container_id)
            except APIError as exc:
                self.client().api.remove_container(container_id, force=True)
                raise StartRefused(f"the container did not start: {_explain(exc)}"[:REASON_CHARS]) from None

        try:
            self._set(lease.lease, "starting")
            await self.call(start)
        except StartRefused as exc:
            self._fail(lease.lease, str(exc))
        except (EngineDown, APIError) as exc:
            log.warning("lease %s: could not start its container: %s", lease.lease, _explain(exc))

    async def _remove(self, lease_id: int, c: dict) -> None:
        try:
            raw = await self.call(
                self._stop_and_remove,
                c["Id"],
                c.get("State") == "running",
                timeout=self.settings.stop_grace + 3 * self.settings.call_timeout,
            )
        except (EngineDown, APIError) as exc:
            log.warning("lease %s: could not remove its container (%s); will try again", lease_id, _explain(exc))
            return
        before = self.current.get(lease_id)
        tail = cut_tail(raw) if raw else (before.log_tail if before else "")
        self._set(lease_id, "removed", exit_code=before.exit_code if before else None, log_tail=tail)
        self.tails.pop(lease_id, None)
        self.exits.pop(c["Id"], None)
        log.info("lease %s: container removed (the lease is no longer this node's)", lease_id)

    async def _observe(self, lease: Lease, c: dict) -> None:
        """The lease's status from its container: state, exit code, endpoints, log tail."""
        cid, engine_state = c["Id"], c.get("State") or ""
        exit_code, reason, endpoints = None, "", ()
        try:
            if engine_state == "running":
                state = "running"
                self.exits.pop(cid, None)  # started again by hand: its next exit is a new one
                fallback = self.advertised_host
                seen = {}
                for p in c.get("Ports") or []:
                    if p.get("PublicPort") and (p.get("Type") or "tcp") == "tcp":
                        seen.setdefault(str(p["PrivatePort"]), _endpoint(p.get("IP") or "", p["PublicPort"], fallback))
                endpoints = tuple(sorted(seen.items()))
            elif engine_state in ("exited", "stopped", "dead"):
                state = "exited"
                if cid not in self.exits:
                    self.exits[cid] = await self.call(self._inspect_state, cid)
                st = self.exits[cid]
                exit_code = st.get("ExitCode")
                if st.get("OOMKilled"):
                    reason = f"killed: out of memory (the lease allows {lease.memory_mb} MB)"
                elif st.get("Error"):
                    reason = str(st["Error"])
            else:  # paused, restarting, removing: nothing the agent does; say what the engine says
                state, reason = "starting", f"engine state: {engine_state}"
            log_tail = await self._tail(lease.lease, cid, state)
        except (EngineDown, APIError) as exc:
            log.warning("lease %s: could not read its container (%s)", lease.lease, _explain(exc))
            return
        self._set(lease.lease, state, exit_code=exit_code, reason=reason, endpoints=endpoints, log_tail=log_tail)

    async def _tail(self, lease_id: int, cid: str, state: str) -> str:
        """The lease's log tail: read again when the state changed, else at most
        every ``log_every`` seconds while it runs (an exited one's is final)."""
        tail = self.tails.get(lease_id)
        now = time.monotonic()
        fresh = tail is None or tail.container != cid or tail.state != state
        if not fresh and (state != "running" or now - tail.at < self.log_every):
            return tail.text
        text = cut_tail(await self.call(self._logs, cid))
        self.tails[lease_id] = _Tail(cid, text, now, state)
        return text

    # --- the loop ----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "reconciling node %s's workloads on %s every %.1fs", self.node_id, self.settings.url, self.reconcile_every
        )
        try:
            while not stop.is_set():
                self._wake.clear()
                started = time.monotonic()
                try:
                    await self.reconcile_once()
                except Exception:  # a bug here must cost a pass, never the agent
                    log.exception("workload reconcile pass failed")
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
                try:
                    await asyncio.wait(waiters, timeout=self.reconcile_every, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiters:
                        w.cancel()
                # Woken early (an operation finished): not more often than every 0.2 s.
                await asyncio.sleep(max(0.0, min(0.2, self.reconcile_every) - (time.monotonic() - started)))
        finally:
            for task in list(self.ops.values()):
                task.cancel()

    def close(self) -> None:
        """Release the threads and the engine connections; the containers keep
        running (the next agent adopts them)."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        for client in (self._client, self._pull_client):
            if client is not None:
                client.close()
        self._client = self._pull_client = None

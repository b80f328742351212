"""The provider agent runs leases on a real container engine (Podman's
Docker-compatible service, see container_engine.py) against a stand-in
dashboard that serves the two lease routes and records every report."""

import asyncio
import json
import logging
import socket
import time
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from apps.monitoring.agents.checker import NotAnswered, health_facts
from apps.monitoring.agents.provider import NO_ENGINE, ProviderAgent
from apps.monitoring.agents.workloads import DEFAULT_CAPS, LOG_TAIL_BYTES, EngineSettings, WorkloadReconciler

from . import container_engine as engine
from .fake_dashboard import fake_dashboard

TOKEN = "agt_workloads"
SECRET = "s3cret-value-never-logged"


@pytest.fixture
def node_id():
    node = engine.new_node_id()
    yield node
    engine.remove_node_containers(node)


@pytest.fixture
def engine_url():
    return engine.engine_url()


# linux/capability.h
CAPABILITIES = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "KILL": 5, "SETGID": 6, "SETUID": 7, "NET_BIND_SERVICE": 10}


def capability_mask(names) -> int:
    return sum(1 << CAPABILITIES[name] for name in names)


def lease(lease_id: int, **spec) -> dict:
    return {
        "lease": lease_id,
        "image": engine.WEB_IMAGE,
        "command": None,
        "env": {},
        "ports": [8080],
        "gpu_count": 1,
        "cpus": 1,
        "memory_mb": 128,
        **spec,
    }


class LeaseDashboard:
    """The dashboard's side of the lease contract: the desired leases (a dict
    a test changes), and every lease report posted, in order."""

    def __init__(self, node_id: int):
        self.node_id = node_id
        self.leases: dict[int, dict] = {}
        self.reports: list[tuple[float, dict]] = []
        self.posts = 0
        self.lease_reads = 0
        self.broken = False

    def routes(self) -> dict:
        return {
            ("GET", "/api/agent/me/"): self.me,
            ("GET", "/api/agent/leases/"): self.get_leases,
            ("POST", "/api/agent/leases/status/"): self.post_status,
            ("POST", "/api/agent/heartbeats/"): self.heartbeats,
        }

    async def me(self, request):
        node = {"id": self.node_id, "name": "node-under-test", "gpu_model": "NVIDIA H100 80GB", "gpu_count": 1}
        return web.json_response({"node": {**node, "vram_gb": 80}})

    async def heartbeats(self, request):
        return web.json_response({}, status=201)

    async def get_leases(self, request):
        assert request.headers["Authorization"] == f"Agent {TOKEN}"
        self.lease_reads += 1
        if self.broken:
            return web.Response(status=500, text="<h1>Server Error (500)</h1>", content_type="text/html")
        return web.json_response({"node": self.node_id, "leases": list(self.leases.values())})

    async def post_status(self, request):
        assert request.headers["Authorization"] == f"Agent {TOKEN}"
        body = await request.json()
        assert 1 <= len(body["leases"]) <= 16
        self.posts += 1
        now = time.monotonic()
        for report in body["leases"]:
            assert set(report) == {"lease", "state", "exit_code", "reason", "endpoints", "log_tail"}
            self.reports.append((now, report))
        return web.json_response(
            {"results": [{"lease": r["lease"], "status": 200, "detail": r["state"]} for r in body["leases"]]}
        )

    def of(self, lease_id: int) -> list[dict]:
        return [r for _, r in self.reports if r["lease"] == lease_id]

    def states(self, lease_id: int) -> list[str]:
        return [r["state"] for r in self.of(lease_id)]

    async def wait_for(self, lease_id: int, state: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reports = self.of(lease_id)
            if reports and reports[-1]["state"] == state:
                return reports[-1]
            await asyncio.sleep(0.05)
        last = self.of(lease_id)[-1:] or [None]
        raise AssertionError(f"lease {lease_id} not {state} within {timeout}s: states {self.states(lease_id)}, {last}")


@asynccontextmanager
async def dashboard(node_id: int):
    board = LeaseDashboard(node_id)
    async with fake_dashboard(board.routes()) as url:
        board.url = url
        yield board


@asynccontextmanager
async def reconciling(board: LeaseDashboard, url: str, **settings):
    """A reconciler for ``board``'s node on the engine at ``url``, running
    until the block ends (then closed, as an agent that stops)."""
    options = {"reconcile_every": settings.pop("reconcile_every", 0.2), "log_every": settings.pop("log_every", 1.0)}
    settings.setdefault("pids_limit", 64)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        reconciler = WorkloadReconciler(
            EngineSettings(url=url, **settings),
            api_url=board.url,
            node_id=board.node_id,
            headers={"Authorization": f"Agent {TOKEN}"},
            session=session,
            **options,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(reconciler.run(stop))
        try:
            yield reconciler
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            reconciler.close()


async def fetch(endpoint: str, timeout: float = 10.0) -> str:
    """GET http://endpoint/, retried until the server in the container answers."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            try:
                async with session.get(f"http://{endpoint}/") as r:
                    return await r.text()
            except (aiohttp.ClientError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def until(check, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.05)


# --- runs, serves, goes ----------------------------------------------------------


@pytest.mark.asyncio
async def test_a_lease_runs_unprivileged_and_its_endpoint_serves_the_page(node_id, engine_url, caplog):
    caplog.set_level(logging.DEBUG)
    async with dashboard(node_id) as board, reconciling(board, engine_url):
        board.leases[1] = lease(1, env={"GREETING": "hello", "API_KEY": SECRET})
        running = await board.wait_for(1, "running")
        assert set(board.states(1)) <= {"starting", "running"}  # the image is on the engine: nothing to pull
        host, port = running["endpoints"]["8080"].rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0 and set(running["endpoints"]) == {"8080"}
        assert "busybox httpd" in await fetch(running["endpoints"]["8080"])

        [container] = engine.node_containers(node_id)
        config, host_config = container.attrs["Config"], container.attrs["HostConfig"]
        assert config["Labels"]["aethir.lease"] == "1" and config["Labels"]["aethir.node"] == str(node_id)
        assert f"API_KEY={SECRET}" in config["Env"]
        assert host_config["NetworkMode"] == "bridge"
        assert host_config["CapDrop"] and not host_config.get("Privileged")
        assert "SYS_ADMIN" not in (host_config.get("CapAdd") or [])
        assert "no-new-privileges" in host_config["SecurityOpt"]
        assert host_config["PidsLimit"] == 64
        assert host_config["NanoCpus"] == 1_000_000_000 and host_config["Memory"] == 128 * 1024 * 1024
        limits = container.exec_run(["sh", "-c", "ulimit -n; ulimit -u"]).output.decode().split()
        assert limits == ["1024", "1024"]  # nofile, nproc: the settings, not the engine's defaults
        assert not host_config.get("DeviceRequests")  # this host has no NVIDIA GPU: none asked for
        status = container.exec_run(["cat", "/proc/self/status"]).output.decode()
        # Every capability dropped but the minimal set (DEFAULT_CAPS), and no way to gain more.
        assert "CapEff:\t" + format(capability_mask(DEFAULT_CAPS), "016x") in status
        assert "NoNewPrivs:\t1" in status
    assert SECRET not in caplog.text


@pytest.mark.asyncio
async def test_a_lease_no_longer_wanted_is_stopped_removed_and_reported_removed_once(node_id, engine_url):
    async with dashboard(node_id) as board, reconciling(board, engine_url, stop_grace=1):
        board.leases[2] = lease(2)
        await board.wait_for(2, "running")
        # The dashboard does not answer: the lease list is unknown, not empty, and nothing is removed.
        board.broken = True
        reads = board.lease_reads
        await until(lambda: board.lease_reads >= reads + 3, what="the agent asks again")
        assert len(engine.node_containers(node_id)) == 1 and board.states(2)[-1] == "running"
        board.broken = False

        del board.leases[2]
        removed = await board.wait_for(2, "removed", timeout=15)
        assert removed["endpoints"] == {}
        assert engine.node_containers(node_id) == []
        reads = board.lease_reads
        await until(lambda: board.lease_reads >= reads + 3, what="more passes")
        assert board.states(2).count("removed") == 1


@pytest.mark.asyncio
async def test_an_image_that_does_not_exist_fails_within_seconds_and_is_not_tried_again(node_id, engine_url):
    image = f"localhost/no-such-image-{node_id}:1"
    async with dashboard(node_id) as board, reconciling(board, engine_url):
        started = time.monotonic()
        board.leases[3] = lease(3, image=image)
        failed = await board.wait_for(3, "failed", timeout=20)
        assert time.monotonic() - started < 20
        assert failed["reason"] == f"image not found: {image}"
        assert board.states(3) == ["pulling", "failed"]
        reads = board.lease_reads
        await until(lambda: board.lease_reads >= reads + 5, what="more passes")
        assert board.states(3) == ["pulling", "failed"]  # no second pull, nothing more to say
        assert engine.node_containers(node_id) == []


@pytest.mark.asyncio
async def test_a_container_that_exits_at_once_is_reported_with_its_code_and_never_restarted(node_id, engine_url):
    async with dashboard(node_id) as board, reconciling(board, engine_url):
        board.leases[4] = lease(4, command=["sh", "-c", "echo bye from the container; exit 3"])
        exited = await board.wait_for(4, "exited")
        assert exited["exit_code"] == 3 and exited["endpoints"] == {}
        assert "bye from the container" in exited["log_tail"]
        [container] = engine.node_containers(node_id)
        first_start = container.attrs["State"]["StartedAt"]
        reads = board.lease_reads
        await until(lambda: board.lease_reads >= reads + 5, what="more passes")
        [container] = engine.node_containers(node_id)
        assert container.status == "exited" and container.attrs["State"]["StartedAt"] == first_start
        assert board.states(4)[-1] == "exited" and board.states(4).count("exited") == 1


@pytest.mark.asyncio
async def test_a_container_spamming_its_logs_gets_a_bounded_tail_at_a_bounded_rate(node_id, engine_url):
    spam = "while true; do echo " + "x" * 200 + " $RANDOM; done"
    async with dashboard(node_id) as board, reconciling(board, engine_url, log_every=1.0) as reconciler:
        board.leases[5] = lease(5, command=["sh", "-c", spam], ports=[])
        await board.wait_for(5, "running")
        # The agent's event loop stays responsive while the container writes as fast as it can.
        worst, watch_until = 0.0, time.monotonic() + 4
        while time.monotonic() < watch_until:
            before = time.monotonic()
            await asyncio.sleep(0.02)
            worst = max(worst, time.monotonic() - before - 0.02)
        window = [r for at, r in board.reports if r["lease"] == 5 and r["state"] == "running"]
        assert worst < 1.0, f"the event loop stalled for {worst:.2f}s"
        assert 2 <= len(window) <= 4 / 1.0 + 3, [len(r["log_tail"]) for r in window]
        tails = [r["log_tail"] for r in window if r["log_tail"]]
        assert tails and all(len(t.encode()) <= LOG_TAIL_BYTES for t in tails)
        assert max(len(t.encode()) for t in tails) > LOG_TAIL_BYTES // 2  # a full tail, cut to the limit
        assert reconciler.posts <= len(board.reports) + 2


@pytest.mark.asyncio
async def test_a_container_that_binds_no_port_runs_and_reports_its_mapped_endpoints(node_id, engine_url):
    async with dashboard(node_id) as board, reconciling(board, engine_url):
        board.leases[6] = lease(6, command=["sleep", "600"], ports=[8080, 9000])
        running = await board.wait_for(6, "running")
        assert set(running["endpoints"]) == {"8080", "9000"}
        assert all(e.startswith("127.0.0.1:") for e in running["endpoints"].values())


# --- restarts and outages ----------------------------------------------------------


@pytest.mark.asyncio
async def test_an_agent_restarted_adopts_its_containers_and_starts_nothing_twice(node_id, engine_url):
    async with dashboard(node_id) as board:
        board.leases[7] = lease(7)
        board.leases[8] = lease(8, command=["sh", "-c", "exit 5"], ports=[])
        async with reconciling(board, engine_url):
            running = await board.wait_for(7, "running")
            await board.wait_for(8, "exited")
        before = {c.labels["aethir.lease"]: c.id for c in engine.node_containers(node_id)}
        assert set(before) == {"7", "8"}
        seen = len(board.reports)

        async with reconciling(board, engine_url) as second:
            await until(lambda: {r["lease"] for _, r in board.reports[seen:]} == {7, 8}, what="the true states")
            await until(lambda: second.passes >= 5, what="more passes")
        again = [r for _, r in board.reports[seen:]]
        assert [r["state"] for r in again if r["lease"] == 7] == ["running"]
        assert [(r["state"], r["exit_code"]) for r in again if r["lease"] == 8] == [("exited", 5)]
        assert [r["endpoints"] for r in again if r["lease"] == 7] == [running["endpoints"]]
        assert {c.labels["aethir.lease"]: c.id for c in engine.node_containers(node_id)} == before


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", ["down", "hung"])
async def test_an_engine_that_is_down_or_hung_costs_no_crash_and_the_node_says_so(fault, node_id, tmp_path, caplog):
    path = tmp_path / "engine.sock"
    hung = socket.socket(socket.AF_UNIX)
    if fault == "hung":
        hung.bind(str(path))
        hung.listen(16)  # accepts connections, never answers
    url = f"unix://{path}"
    try:
        async with dashboard(node_id) as board:
            board.leases[9] = lease(9)
            agent = ProviderAgent(
                api_url=board.url,
                token=TOKEN,
                sample_every=0.2,
                engine=EngineSettings(url=url, call_timeout=0.5),
                reconcile_every=0.2,
            )
            stop = asyncio.Event()
            with caplog.at_level(logging.WARNING):
                task = asyncio.create_task(agent.run(stop))
                try:
                    await until(lambda: agent.workloads is not None and agent.workloads.passes >= 3, what="passes")
                    async with aiohttp.ClientSession() as session:
                        started = time.monotonic()
                        async with session.get(agent.endpoint) as r:
                            body = await r.read()
                        assert time.monotonic() - started < 1.0  # the engine's wait is not the node's
                finally:
                    stop.set()
                    await asyncio.wait_for(task, 10)
                    await agent.close()
            assert json.loads(body)["engine"] == "down"
            with pytest.raises(NotAnswered, match="engine is down"):  # it cannot run what it is rented for
                health_facts(body)
            assert board.reports == [] and board.lease_reads == 0
            warnings = [r.getMessage() for r in caplog.records if "not answering" in r.getMessage()]
            assert len(warnings) == 1 and url in warnings[0]
    finally:
        hung.close()


@pytest.mark.asyncio
async def test_a_node_without_an_engine_runs_no_workloads_and_says_so(node_id):
    """No engine: the health answer says "none", and each lease is reported
    failed once, with the reason, so the renter's page says why nothing runs."""
    async with dashboard(node_id) as board:
        board.leases[10] = lease(10)
        agent = ProviderAgent(api_url=board.url, token=TOKEN, sample_every=0.2, reconcile_every=0.1)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        try:
            await until(lambda: agent.port and agent.buffer, what="the agent serves")
            async with aiohttp.ClientSession() as session, session.get(agent.endpoint) as r:
                answer = await r.json()
            failed = await board.wait_for(10, "failed")
            board.leases[11] = lease(11)  # a later lease too, while 10 is still listed
            await board.wait_for(11, "failed")
            reads = board.lease_reads
            await until(lambda: board.lease_reads >= reads + 3, what="more passes")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await agent.close()
        assert answer["engine"] == "none" and agent.workloads is None
        assert failed["reason"] == NO_ENGINE and failed["endpoints"] == {} and failed["exit_code"] is None
        assert board.states(10) == ["failed"] and board.states(11) == ["failed"]  # each told once


class EngineSwitch:
    """A Unix socket in front of the real engine's that can be switched off
    (connections refused, open ones cut) and on again: the engine going
    down and coming back, as the agent sees it."""

    def __init__(self, path, engine_url: str):
        self.path = str(path)
        self.target = engine_url.removeprefix("unix://")
        self.server = None
        self.writers: set = set()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    async def on(self):
        self.server = await asyncio.start_unix_server(self._pipe, path=self.path)

    async def off(self):
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await self.server.wait_closed()

    async def _pipe(self, reader, writer):
        up_reader, up_writer = await asyncio.open_unix_connection(self.target)
        self.writers |= {writer, up_writer}

        async def copy(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        self.writers -= {writer, up_writer}


@pytest.mark.asyncio
async def test_an_engine_that_goes_down_and_comes_back_is_reconciled_again_without_restarts(
    node_id, engine_url, tmp_path
):
    switch = EngineSwitch(tmp_path / "engine.sock", engine_url)
    await switch.on()
    async with dashboard(node_id) as board, reconciling(board, switch.url, call_timeout=1.0) as reconciler:
        board.leases[11] = lease(11)
        await board.wait_for(11, "running")
        [first] = engine.node_containers(node_id)

        await switch.off()
        await until(lambda: reconciler.engine == "down", what="the engine seen down")
        board.leases[12] = lease(12, command=["sleep", "600"], ports=[])
        reported, passes = len(board.reports), reconciler.passes
        await until(lambda: reconciler.passes >= passes + 3, what="passes while down")
        assert len(board.reports) == reported  # nothing reported, nothing started
        assert [c.id for c in engine.node_containers(node_id)] == [first.id]

        await switch.on()
        await board.wait_for(12, "running")
        assert reconciler.engine == "ok"
        assert {c.labels["aethir.lease"]: c.id for c in engine.node_containers(node_id)}[str(11)] == first.id
        assert board.states(11)[-1] == "running"
        await switch.off()

"""The workload reconciler's parts that need no engine: what it accepts of a
lease, how it cuts a log tail, and how it reports (batches the dashboard
takes, what it sends again). The engine itself: test_workloads_engine.py."""

import json

import aiohttp
import pytest
from aiohttp import web

from apps.monitoring.agents.workloads import (
    LOG_TAIL_BYTES,
    MAX_LEASES_PER_POST,
    EngineSettings,
    Lease,
    LeaseStatus,
    WorkloadReconciler,
    cut_tail,
)

from .fake_dashboard import fake_dashboard

GOOD = {
    "lease": 7,
    "image": "localhost/aethir-web:1",
    "command": ["sh", "-c", "echo hi"],
    "env": {"API_KEY": "s3cret"},
    "ports": [8080, 8080, 22],
    "gpu_count": 2,
    "cpus": 8,
    "memory_mb": 4096,
}


def test_a_lease_is_read_with_its_ports_once_and_its_secrets_out_of_its_repr():
    lease = Lease.parse(GOOD)
    assert lease.ports == (22, 8080) and lease.command == ("sh", "-c", "echo hi")
    assert lease.env == (("API_KEY", "s3cret"),)
    assert "s3cret" not in repr(lease)
    assert Lease.parse({**GOOD, "command": None, "env": {}, "ports": []}).command is None


@pytest.mark.parametrize(
    "change, what",
    [
        ({"lease": True}, "lease"),
        ({"lease": 0}, "lease"),
        ({"image": ""}, "image"),
        ({"image": "a b"}, "image"),
        ({"command": []}, "command"),
        ({"command": "sh"}, "command"),
        ({"env": {"A=B": "x"}}, "env"),
        ({"env": {"A": 1}}, "env"),
        ({"env": {"A": "x\x00y"}}, "NUL"),
        ({"ports": [0]}, "ports"),
        ({"ports": [70000]}, "ports"),
        ({"ports": ["80"]}, "ports"),
        ({"cpus": 0}, "cpus"),
        ({"memory_mb": 1.5}, "memory_mb"),
        ({"gpu_count": -1}, "gpu_count"),
    ],
)
def test_a_malformed_lease_is_refused_naming_the_field_never_a_value(change, what):
    with pytest.raises(ValueError) as refused:
        Lease.parse({**GOOD, **change})
    assert what in str(refused.value) and "s3cret" not in str(refused.value)


def test_a_log_tail_is_the_last_64_kib_as_text_that_a_database_takes():
    assert cut_tail(b"hello\n") == "hello\n"
    big = b"".join(b"line %d\n" % i for i in range(100_000))
    tail = cut_tail(big)
    assert len(tail.encode()) <= LOG_TAIL_BYTES and tail.endswith("line 99999\n")
    # Cut inside a character: the tail starts on the next whole one.
    euro = "\u20ac".encode() * 30_000
    assert set(cut_tail(euro)) == {"\u20ac"}
    # Bytes that are not UTF-8 (each replaced by a 3-byte character) and NULs: still within the limit, no NUL.
    junk = cut_tail(b"\xff\x00" * 100_000)
    assert len(junk.encode()) <= LOG_TAIL_BYTES and "\x00" not in junk and junk


class Recorder:
    def __init__(self, answer=None):
        self.bodies = []
        self.answer = answer

    async def post(self, request):
        body = await request.json()
        self.bodies.append(body)
        if self.answer:
            return self.answer(body)
        return web.json_response(
            {"results": [{"lease": r["lease"], "status": 200, "detail": ""} for r in body["leases"]]}
        )


async def reporter(url: str, session) -> WorkloadReconciler:
    return WorkloadReconciler(
        EngineSettings(url="unix:///nowhere.sock"), api_url=url, node_id=1, headers={}, session=session
    )


@pytest.mark.asyncio
async def test_reports_go_in_batches_the_dashboard_takes_and_only_what_changed():
    recorder = Recorder()
    async with fake_dashboard({("POST", "/api/agent/leases/status/"): recorder.post}) as url:
        async with aiohttp.ClientSession() as session:
            r = await reporter(url, session)
            tail = "\x01" * LOG_TAIL_BYTES  # six bytes each as JSON
            for lease in range(1, 41):
                r.current[lease] = LeaseStatus(lease, "running", log_tail=tail)
            await r.report()
            assert sum(len(b["leases"]) for b in recorder.bodies) == 40
            assert all(len(b["leases"]) <= MAX_LEASES_PER_POST for b in recorder.bodies)
            assert all(len(json.dumps(b)) < 2_000_000 for b in recorder.bodies)
            posts = len(recorder.bodies)
            await r.report()  # nothing changed: nothing sent
            assert len(recorder.bodies) == posts
            r.current[3] = LeaseStatus(3, "exited", exit_code=1)
            await r.report()
            assert recorder.bodies[-1]["leases"] == [
                {"lease": 3, "state": "exited", "exit_code": 1, "reason": "", "endpoints": {}, "log_tail": ""}
            ]
            r.close()


@pytest.mark.asyncio
async def test_a_refused_report_is_not_sent_again_and_an_unanswered_one_is():
    def answer(body):
        results = [{"lease": 1, "status": 404, "detail": "Lease 1 is not one of this node's."}]  # 2: no answer
        return web.json_response({"results": results})

    recorder = Recorder(answer)
    async with fake_dashboard({("POST", "/api/agent/leases/status/"): recorder.post}) as url:
        async with aiohttp.ClientSession() as session:
            r = await reporter(url, session)
            r.current[1] = LeaseStatus(1, "running")
            r.current[2] = LeaseStatus(2, "running")
            await r.report()
            await r.report()
            assert [[x["lease"] for x in b["leases"]] for b in recorder.bodies] == [[1, 2], [2]]
            r.close()


@pytest.mark.asyncio
async def test_removed_is_reported_once_then_the_lease_is_forgotten():
    recorder = Recorder()
    async with fake_dashboard({("POST", "/api/agent/leases/status/"): recorder.post}) as url:
        async with aiohttp.ClientSession() as session:
            r = await reporter(url, session)
            r.current[5] = LeaseStatus(5, "removed", exit_code=0, log_tail="bye\n")
            await r.report()
            await r.report()
            assert len(recorder.bodies) == 1 and 5 not in r.current and 5 not in r.accepted
            r.close()

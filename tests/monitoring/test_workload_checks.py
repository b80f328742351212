"""The dashboard's side of workload probes: the assignments a checker gets
name a rented node's lease (one query for all its nodes), a report's
workload share is stored and signed, reports signed before the field
existed still verify with the same payload hash, and consensus takes the
median of the reports that checked a workload."""

import hashlib
import json

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import open_wallet
from apps.core.amounts import ath
from apps.core.models import GpuNode, NodeStatus
from apps.marketplace import rentals, workload_spec, workloads
from apps.marketplace.models import RentalMode
from apps.monitoring import assignment, consensus, signing
from apps.monitoring.models import CheckerReport, NodeEpoch

from ..factories import UserFactory, fund, make_checker, make_node

PPM = 1_000_000
# What a report's signature covered before reports carried a workload share.
FIELDS_BEFORE_WORKLOADS = (
    "epoch",
    "node",
    "probes",
    "uptime_ppm",
    "task_ppm",
    "latency_ms",
    "spec_ok",
    "gpu_name_seen",
    "gpu_count_seen",
)


def agent(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Agent {token}")
    return client


def rent(node, ports="8080, 9090"):
    GpuNode.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)
    renter = UserFactory()
    fund(open_wallet(renter), ath(1_000))
    spec = workload_spec.build(image="localhost/web:1", ports=ports)
    return rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=3, workload=spec)


@pytest.fixture
def net(genesis):
    rented, rented_token = make_node()
    idle, _ = make_node()
    checkers = [make_checker() for _ in range(3)]  # replication 3: every checker has both nodes
    keys = {}
    for checker, token in checkers:
        keys[checker.pk] = signing.new_key()
        agent(token).post("/api/agent/key/", {"public_key": signing.public_hex(keys[checker.pk])}, format="json")
    assignment.fix_round(0)
    rental = rent(rented)
    return {"rented": rented, "token": rented_token, "idle": idle, "rental": rental, "checkers": checkers, "keys": keys}


def assignments_of(token) -> dict:
    r = agent(token).get("/api/agent/assignments/")
    assert r.status_code == 200
    return {a["node"]: a for a in r.json()["assignments"]}


def test_an_assignment_names_the_rented_nodes_lease_and_nothing_for_an_idle_one(net):
    _, token = net["checkers"][0]
    lease = net["rental"].pk
    got = assignments_of(token)
    assert "workload" not in got[net["idle"].pk]
    # Just rented: the agent has not started it yet (within the start grace).
    assert got[net["rented"].pk]["workload"] == {
        "lease": lease,
        "running": False,
        "starting": True,
        "ports": [8080, 9090],
        "endpoints": [],
    }
    r = agent(net["token"]).post(
        "/api/agent/leases/status/",
        {"leases": [{"lease": lease, "state": "running", "endpoints": {"9090": "203.0.113.5:32001", "8080": "x:1"}}]},
        format="json",
    )
    assert r.json()["results"][0]["status"] == 200
    assert assignments_of(token)[net["rented"].pk]["workload"] == {
        "lease": lease,
        "running": True,
        "starting": False,
        "ports": [8080, 9090],
        "endpoints": ["x:1", "203.0.113.5:32001"],  # in the order of the ports
    }


def test_a_lease_not_started_after_the_grace_is_probed_as_not_running(net):
    rental = net["rental"]
    type(rental).objects.filter(pk=rental.pk).update(created_at=rental.created_at - workloads.START_GRACE)
    target = workloads.workload_targets([net["rented"].pk], 0)[net["rented"].pk]
    assert (target["running"], target["starting"], target["endpoints"]) == (False, False, [])


def test_an_ended_rental_is_no_longer_probed(net):
    rentals.end_rental(net["rental"].renter, net["rental"].pk)
    assert workloads.workload_targets([net["rented"].pk, net["idle"].pk], 0) == {}


def test_workload_targets_is_one_query_however_many_nodes(net, django_assert_num_queries):
    others = [make_node()[0] for _ in range(3)]
    for node in others:
        rent(node, ports="")
    ids = [net["rented"].pk, net["idle"].pk, *(n.pk for n in others)]
    with django_assert_num_queries(1):
        targets = workloads.workload_targets(ids, 0)
    assert set(targets) == {net["rented"].pk, *(n.pk for n in others)}
    assert targets[others[0].pk]["ports"] == []


def signed(key, node, **fields):
    report = {
        "epoch": 0,
        "node": node,
        "probes": 12,
        "uptime_ppm": PPM,
        "task_ppm": PPM,
        "latency_ms": 20,
        "spec_ok": True,
        "gpu_name_seen": "NVIDIA H100 80GB",
        "gpu_count_seen": 1,
        **fields,
    }
    report["signature"] = signing.sign(key, report)
    return report


def test_a_reports_workload_share_is_stored_and_signed(net):
    checker, token = net["checkers"][0]
    key = net["keys"][checker.pk]
    node = net["rented"].pk
    stripped = signed(key, node, workload_ppm=400_000)
    del stripped["workload_ppm"]
    r = agent(token).post("/api/agent/reports/", stripped, format="json")
    assert r.status_code == 400 and "signature" in r.json()["detail"]
    out_of_range = signed(key, node, workload_ppm=PPM + 1)
    assert agent(token).post("/api/agent/reports/", out_of_range, format="json").status_code == 400
    r = agent(token).post("/api/agent/reports/", signed(key, node, workload_ppm=400_000), format="json")
    assert r.status_code == 201
    assert CheckerReport.objects.get().workload_ppm == 400_000


def test_a_report_signed_before_workloads_existed_still_verifies_with_the_same_hash(net):
    """Signed over the old message (no workload field at all), as agents
    did before: accepted, stored with the hash it always had, and the same
    report sent again is the same report."""
    checker, token = net["checkers"][1]
    key = net["keys"][checker.pk]
    report = {k: v for k, v in signed(key, net["idle"].pk).items() if k != "signature"}
    old_message = json.dumps({k: report[k] for k in FIELDS_BEFORE_WORKLOADS}, sort_keys=True, separators=(",", ":"))
    report["signature"] = key.sign(old_message.encode()).hex()
    assert signing.message(report) == old_message.encode()
    assert agent(token).post("/api/agent/reports/", report, format="json").status_code == 201
    row = CheckerReport.objects.get()
    assert row.workload_ppm is None
    assert row.payload_hash == hashlib.sha256(old_message.encode()).hexdigest()
    # A null share is the same report as none at all.
    again = agent(token).post("/api/agent/reports/", {**report, "workload_ppm": None}, format="json")
    assert again.status_code == 200 and again.json()["created"] is False


def r(workload=None, uptime=PPM):
    return {"uptime_ppm": uptime, "task_ppm": uptime, "latency_ms": 30, "spec_ok": True, "workload_ppm": workload}


def test_consensus_takes_the_median_of_the_reports_that_checked_a_workload():
    v = consensus.consensus([r(PPM), r(900_000), r(0)], quorum=2)
    assert v.workload_ppm == 900_000
    # Only one report checked it: below quorum, no workload verdict.
    assert consensus.consensus([r(0), r(), r()], quorum=2).workload_ppm is None
    # Reports from before the field existed do not carry the key at all.
    old = {k: v for k, v in r().items() if k != "workload_ppm"}
    assert consensus.consensus([old, old, r(PPM)], quorum=2).workload_ppm is None


def test_a_workload_share_is_judged_with_the_uptime_tolerance():
    v = consensus.consensus([r(PPM), r(PPM), r(PPM)], quorum=2)
    assert consensus.is_correct(r(950_000), v, uptime_tol=50_000, latency_tol=300_000)
    assert not consensus.is_correct(r(949_999), v, uptime_tol=50_000, latency_tol=300_000)
    # A report that did not check the workload is not judged on it.
    assert consensus.is_correct(r(None), v, uptime_tol=50_000, latency_tol=300_000)


def test_task_completion_in_the_health_score_is_the_workloads_share_when_lower():
    up = consensus.consensus([r(PPM)] * 3, quorum=2)
    down = consensus.consensus([r(0)] * 3, quorum=2)
    unrented = consensus.consensus([r()] * 3, quorum=2)
    assert consensus.health_score(up, 150) == consensus.health_score(unrented, 150) == PPM
    assert consensus.health_score(down, 150) == PPM - consensus.HEALTH_WEIGHTS["task"]


def test_finalize_records_the_workload_verdict_and_marks_the_outlier(net):
    node, idle = net["rented"], net["idle"]
    for (checker, _), share in zip(net["checkers"], (PPM, 980_000, 0), strict=True):
        for n, value in ((node, share), (idle, None)):
            CheckerReport.objects.create(
                epoch=0,
                node=n,
                checker=checker,
                payload_hash="x",
                signature="y",
                probes=10,
                uptime_ppm=PPM,
                task_ppm=PPM,
                latency_ms=30,
                spec_ok=True,
                gpu_name_seen=n.gpu_model.name,
                gpu_count_seen=1,
                workload_ppm=value,
            )
    consensus.finalize(0)
    ne, idle_ne = NodeEpoch.objects.get(epoch=0, node=node), NodeEpoch.objects.get(epoch=0, node=idle)
    assert (ne.valid, ne.workload_ppm) == (True, 980_000)
    assert ne.health_score == PPM - consensus.HEALTH_WEIGHTS["task"] * 20_000 // PPM
    assert (idle_ne.valid, idle_ne.workload_ppm, idle_ne.health_score) == (True, None, PPM)
    outlier = net["checkers"][2][0]
    assert CheckerReport.objects.get(epoch=0, node=node, checker=outlier).correct is False
    assert CheckerReport.objects.get(epoch=0, node=idle, checker=outlier).correct is True

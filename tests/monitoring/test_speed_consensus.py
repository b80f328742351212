"""The dashboard's side of measured speeds: a report's ``download_mbps`` is
validated, stored and signed (a report without it keeps the bytes it was
always signed over), the assignments tell checkers the test's size,
consensus takes the median of a quorum of figures without judging anyone
by them, and the node keeps its latest measured figure."""

import hashlib

import pytest
from rest_framework.test import APIClient

from apps.core import parameters
from apps.core.models import GpuNode
from apps.monitoring import assignment, consensus, signing
from apps.monitoring.models import CheckerReport, NodeEpoch

from ..factories import make_checker, make_node

PPM = 1_000_000


def agent(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Agent {token}")
    return client


@pytest.fixture
def net(genesis):
    node, _ = make_node()
    checkers = [make_checker() for _ in range(3)]  # replication 3: every checker has the node
    keys = {}
    for checker, token in checkers:
        keys[checker.pk] = signing.new_key()
        agent(token).post("/api/agent/key/", {"public_key": signing.public_hex(keys[checker.pk])}, format="json")
    assignment.fix_round(0)
    return {"node": node, "checkers": checkers, "keys": keys}


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


def test_the_assignments_name_the_speed_tests_size(net):
    _, token = net["checkers"][0]
    assert agent(token).get("/api/agent/assignments/").json()["speed_test_kib"] == parameters.get("speed_test_kib")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "must be between 0 and 1000000"),
        (1_000_001, "must be between 0 and 1000000"),
        (12.5, "must be an integer"),
        (100.0, "must be an integer"),
        ("900", "must be an integer"),
        (True, "must be an integer"),
    ],
)
def test_a_bad_download_speed_is_refused_with_a_clear_message(net, value, message):
    checker, token = net["checkers"][0]
    report = signed(net["keys"][checker.pk], net["node"].pk, download_mbps=value)
    r = agent(token).post("/api/agent/reports/", report, format="json")
    assert r.status_code == 400
    assert r.json()["detail"] == f"download_mbps {message}."
    # The same in a batch: that report refused, with the same message.
    r = agent(token).post("/api/agent/reports/batch/", {"reports": [report]}, format="json")
    assert r.json()["results"][0]["status"] == 400
    assert r.json()["results"][0]["detail"] == f"download_mbps {message}."
    assert not CheckerReport.objects.exists()


def test_a_download_speed_is_stored_and_signed(net):
    checker, token = net["checkers"][0]
    key, node = net["keys"][checker.pk], net["node"].pk
    stripped = signed(key, node, download_mbps=940)
    del stripped["download_mbps"]
    r = agent(token).post("/api/agent/reports/", stripped, format="json")
    assert r.status_code == 400 and "signature" in r.json()["detail"]
    changed = {**signed(key, node, download_mbps=940), "download_mbps": 9400}
    assert agent(token).post("/api/agent/reports/", changed, format="json").status_code == 400
    r = agent(token).post(
        "/api/agent/reports/batch/", {"reports": [signed(key, node, download_mbps=940)]}, format="json"
    )
    assert r.json()["results"][0]["status"] == 201
    assert CheckerReport.objects.get().download_mbps == 940


def test_a_report_without_a_download_speed_keeps_its_signed_bytes(net):
    checker, token = net["checkers"][1]
    key = net["keys"][checker.pk]
    report = signed(key, net["node"].pk)
    before = signing.message(report)
    assert b"download_mbps" not in before
    assert agent(token).post("/api/agent/reports/", report, format="json").status_code == 201
    row = CheckerReport.objects.get()
    assert row.download_mbps is None
    assert row.payload_hash == hashlib.sha256(before).hexdigest()
    # A null figure is the same report as none at all.
    again = agent(token).post("/api/agent/reports/", {**report, "download_mbps": None}, format="json")
    assert again.status_code == 200 and again.json()["created"] is False


def r(mbps=None, uptime=PPM):
    return {"uptime_ppm": uptime, "task_ppm": uptime, "latency_ms": 30, "spec_ok": True, "download_mbps": mbps}


def test_consensus_takes_the_median_of_a_quorum_of_measured_speeds():
    assert consensus.consensus([r(900), r(1_000), r(40)], quorum=2).download_mbps == 900
    assert consensus.consensus([r(900), r(1_000), r()], quorum=2).download_mbps == 900  # median_low of two
    # Only one report measured it: below quorum, no figure.
    assert consensus.consensus([r(900), r(), r()], quorum=2).download_mbps is None
    # Reports from before the field existed do not carry the key at all.
    old = {k: v for k, v in r().items() if k != "download_mbps"}
    assert consensus.consensus([old, old, r(900)], quorum=2).download_mbps is None


def test_a_wildly_different_speed_does_not_make_a_report_incorrect():
    reports = [r(900), r(1_000), r(1)]
    verdict, marks = consensus.judge(reports, quorum=2, uptime_tol=50_000, latency_tol=300_000)
    assert verdict.valid and verdict.download_mbps == 900
    assert marks == [True, True, True]
    assert consensus.is_correct(r(PPM), verdict, uptime_tol=50_000, latency_tol=300_000)
    assert consensus.is_correct(r(None), verdict, uptime_tol=50_000, latency_tol=300_000)


def report_row(node, checker, epoch, mbps):
    return CheckerReport.objects.create(
        epoch=epoch,
        node=node,
        checker=checker,
        payload_hash="x",
        signature="y",
        probes=10,
        uptime_ppm=PPM,
        task_ppm=PPM,
        latency_ms=30,
        spec_ok=True,
        gpu_name_seen=node.gpu_model.name,
        gpu_count_seen=1,
        download_mbps=mbps,
    )


def test_finalize_records_the_median_and_the_node_keeps_its_latest_figure(net):
    node = net["node"]
    for (checker, _), mbps in zip(net["checkers"], (950, 880, 5), strict=True):
        report_row(node, checker, 0, mbps)
    consensus.finalize(0)
    assert NodeEpoch.objects.get(epoch=0, node=node).download_mbps == 880
    assert not CheckerReport.objects.filter(correct=False).exists()
    node.refresh_from_db()
    assert (node.measured_mbps, node.measured_mbps_epoch) == (880, 0)
    # A later epoch with too few figures keeps the last measured one.
    assignment.fix_round(1)
    for (checker, _), mbps in zip(net["checkers"], (700, None, None), strict=True):
        report_row(node, checker, 1, mbps)
    consensus.finalize(1)
    assert NodeEpoch.objects.get(epoch=1, node=node).download_mbps is None
    node.refresh_from_db()
    assert (node.measured_mbps, node.measured_mbps_epoch) == (880, 0)
    assert GpuNode.objects.filter(measured_mbps__isnull=False).count() == 1


def test_the_speed_test_is_small_in_the_demo_and_two_mib_on_a_real_network(settings):
    settings.DEMO_MODE = True
    assert parameters.default("speed_test_kib") == 32
    settings.DEMO_MODE = False
    assert parameters.default("speed_test_kib") == 2048
    # 0 turns it off; above 16 MiB is refused.
    parameters.validate({"speed_test_kib": 0}, base=_defaults())
    with pytest.raises(parameters.ParameterError):
        parameters.validate({"speed_test_kib": 16_385}, base=_defaults())


def _defaults() -> dict:
    return {key: p.default for key, p in parameters.DEFINITIONS.items()}

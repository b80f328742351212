"""The agent API: each token acts for its own node or checker only; bad
payloads get a 400 with a message and write nothing; reports are signed and
idempotent."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.models import CheckerNode, OutboxEvent
from apps.monitoring import assignment, live, queries, signing
from apps.monitoring.models import CheckerReport, EpochConsensus, Heartbeat

from ..factories import heartbeat_sample, make_checker, make_node

SAMPLE = heartbeat_sample()


def agent(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Agent {token}")
    return client


@pytest.fixture
def net(genesis):
    node, node_token = make_node()
    other_node, other_token = make_node()
    checkers = [make_checker() for _ in range(3)]
    keys = {}
    for checker, token in checkers:
        key = signing.new_key()
        assert (
            agent(token).post("/api/agent/key/", {"public_key": signing.public_hex(key)}, format="json").status_code
            == 200
        )
        keys[checker.pk] = key
    assignment.fix_round(0)
    return {
        "node": node,
        "node_token": node_token,
        "other_node": other_node,
        "other_token": other_token,
        "checkers": checkers,
        "keys": keys,
    }


def signed(key, **fields):
    report = {
        "epoch": 0,
        "probes": 12,
        "uptime_ppm": 1_000_000,
        "task_ppm": 1_000_000,
        "latency_ms": 20,
        "spec_ok": True,
        "gpu_name_seen": "NVIDIA H100 80GB",
        "gpu_count_seen": 1,
        **fields,
    }
    report["signature"] = signing.sign(key, report)
    return report


def test_heartbeats_land_for_the_tokens_own_node_only(net):
    now = timezone.now()
    samples = [{**SAMPLE, "at": (now - timedelta(seconds=s)).isoformat()} for s in (5, 0)]
    r = agent(net["node_token"]).post(
        "/api/agent/heartbeats/", {"samples": samples, "node": net["other_node"].pk}, format="json"
    )
    assert r.status_code == 201 and r.json()["stored"] == 2
    assert Heartbeat.objects.filter(node=net["node"]).count() == 2
    assert not Heartbeat.objects.filter(node=net["other_node"]).exists()  # the body cannot redirect it
    net["node"].refresh_from_db()
    assert queries.last_heartbeat(net["node"].pk) is not None


@pytest.mark.parametrize(
    "payload, message",
    [
        ({}, "samples"),
        ({"samples": []}, "samples"),
        ({"samples": [SAMPLE, {**SAMPLE, "gpu_util": 101}]}, "samples[1].gpu_util"),
        ({"samples": [{**SAMPLE, "temperature_c": "hot"}]}, "integer"),
        ({"samples": [SAMPLE] * 501}, "At most 500"),
        ({"samples": [{**SAMPLE, "at": "yesterday"}]}, "ISO 8601"),
        ({"samples": [{**SAMPLE, "at": "2001-01-01T00:00:00Z"}]}, "too far"),
        # Found by the API fuzzer: well formed but impossible times were a 500.
        ({"samples": [{**SAMPLE, "at": "2026-13-45T25:61:00Z"}]}, "ISO 8601"),
        ({"samples": [{**SAMPLE, "at": "2026-02-30T00:00:00+00:00"}]}, "ISO 8601"),
        ({"samples": ["x"]}, "object"),
    ],
)
def test_bad_heartbeat_batches_write_nothing(net, payload, message):
    r = agent(net["node_token"]).post("/api/agent/heartbeats/", payload, format="json")
    assert r.status_code == 400 and message in r.json()["detail"]
    assert not Heartbeat.objects.exists()


def test_tokens_are_checked(net):
    assert APIClient().post("/api/agent/heartbeats/", {"samples": [SAMPLE]}, format="json").status_code == 401
    assert agent("agt_forged").post("/api/agent/heartbeats/", {"samples": [SAMPLE]}, format="json").status_code == 401
    checker, checker_token = net["checkers"][0]
    # A checker token cannot post telemetry; a node token cannot fetch assignments or report.
    assert agent(checker_token).post("/api/agent/heartbeats/", {"samples": [SAMPLE]}, format="json").status_code == 403
    assert agent(net["node_token"]).get("/api/agent/assignments/").status_code == 403
    assert agent(net["node_token"]).post("/api/agent/reports/", {}, format="json").status_code == 403


def test_a_checker_reports_only_its_own_assignments(net):
    node = net["node"]
    assigned = set(node.assignments.filter(epoch=0).values_list("checker_id", flat=True))
    for checker, token in net["checkers"]:
        r = agent(token).post("/api/agent/reports/", signed(net["keys"][checker.pk], node=node.pk), format="json")
        if checker.pk in assigned:
            assert r.status_code == 201
        else:
            assert r.status_code == 400 and "not assigned" in r.json()["detail"]
    # Reports are recorded for the token's checker, whatever the body says.
    assert set(CheckerReport.objects.values_list("checker_id", flat=True)) == assigned


def test_a_token_cannot_sign_for_another_checker(net):
    (c1, t1), (c2, _), _ = net["checkers"]
    node = net["node"]
    # c1's token with c2's key: the signature does not verify against c1's registered key.
    r = agent(t1).post("/api/agent/reports/", signed(net["keys"][c2.pk], node=node.pk), format="json")
    assert r.status_code == 400
    assert not CheckerReport.objects.exists()


def test_reports_are_idempotent_and_conflicts_refused(net):
    node = net["node"]
    checker = CheckerNode.objects.get(pk=node.assignments.filter(epoch=0).first().checker_id)
    token = next(t for c, t in net["checkers"] if c.pk == checker.pk)
    key = net["keys"][checker.pk]
    report = signed(key, node=node.pk)
    assert agent(token).post("/api/agent/reports/", report, format="json").status_code == 201
    again = agent(token).post("/api/agent/reports/", report, format="json")
    assert again.status_code == 200 and again.json()["created"] is False
    changed = agent(token).post("/api/agent/reports/", signed(key, node=node.pk, uptime_ppm=1), format="json")
    assert changed.status_code == 409
    assert CheckerReport.objects.count() == 1 and CheckerReport.objects.get().uptime_ppm == 1_000_000


@pytest.mark.parametrize(
    "tamper, status, message",
    [
        (lambda rep: rep.update(uptime_ppm=999), 400, "signature"),
        (lambda rep: rep.update(uptime_ppm=2_000_000), 400, "uptime_ppm"),
        (lambda rep: rep.update(spec_ok="yes"), 400, "spec_ok"),
        (lambda rep: rep.pop("probes"), 400, "probes"),
    ],
)
def test_bad_reports_write_nothing(net, tamper, status, message):
    node = net["node"]
    checker_id = node.assignments.filter(epoch=0).first().checker_id
    token = next(t for c, t in net["checkers"] if c.pk == checker_id)
    report = signed(net["keys"][checker_id], node=node.pk)
    tamper(report)
    r = agent(token).post("/api/agent/reports/", report, format="json")
    assert r.status_code == status and message in r.json()["detail"]
    assert not CheckerReport.objects.exists()


def test_a_future_epoch_is_refused(net):
    node = net["node"]
    checker_id = node.assignments.filter(epoch=0).first().checker_id
    token = next(t for c, t in net["checkers"] if c.pk == checker_id)
    r = agent(token).post("/api/agent/reports/", signed(net["keys"][checker_id], node=node.pk, epoch=99), format="json")
    assert r.status_code == 400 and "not started" in r.json()["detail"]


def test_a_closed_epoch_takes_no_more_reports(net):
    EpochConsensus.objects.create(epoch=0)
    node = net["node"]
    checker_id = node.assignments.filter(epoch=0).first().checker_id
    token = next(t for c, t in net["checkers"] if c.pk == checker_id)
    r = agent(token).post("/api/agent/reports/", signed(net["keys"][checker_id], node=node.pk), format="json")
    assert r.status_code == 409 and "closed" in r.json()["detail"]


def test_a_key_cannot_be_swapped_by_the_agent(net):
    checker, token = net["checkers"][0]
    r = agent(token).post("/api/agent/key/", {"public_key": signing.public_hex(signing.new_key())}, format="json")
    assert r.status_code == 409


def test_assignments_endpoint_lists_only_the_checkers_nodes(net):
    checker, token = net["checkers"][0]
    data = agent(token).get("/api/agent/assignments/").json()
    expected = set(checker.assignments.filter(epoch=0).values_list("node_id", flat=True))
    assert {a["node"] for a in data["assignments"]} == expected
    assert data["epoch"] == 0 and data["checker"] == checker.pk


def test_a_batch_judges_each_report_on_its_own(net):
    node, other = net["node"], net["other_node"]
    checker_id = node.assignments.filter(epoch=0).first().checker_id
    token = next(t for c, t in net["checkers"] if c.pk == checker_id)
    key = net["keys"][checker_id]
    good = signed(key, node=node.pk)
    forged = {**signed(key, node=other.pk), "uptime_ppm": 1}
    r = agent(token).post("/api/agent/reports/batch/", {"reports": [good, forged, good]}, format="json")
    assert r.status_code == 200
    statuses = [x["status"] for x in r.json()["results"]]
    assert statuses[0] == 201 and statuses[1] == 400 and statuses[2] == 200
    assert CheckerReport.objects.count() == 1
    assert agent(token).post("/api/agent/reports/batch/", {"reports": []}, format="json").status_code == 400
    assert (
        agent(net["node_token"]).post("/api/agent/reports/batch/", {"reports": [good]}, format="json").status_code
        == 403
    )


def test_a_batch_tells_open_pages_once(net):
    """Live pages hear of a batch once: each node with a new report one hint
    (in that report's transaction), the overview and the checker's page one
    each, nothing for refused or repeated reports."""
    node, other = net["node"], net["other_node"]
    # Three checkers, three per node: each checker holds both nodes.
    checker_id = node.assignments.filter(epoch=0).first().checker_id
    token = next(t for c, t in net["checkers"] if c.pk == checker_id)
    key = net["keys"][checker_id]
    reports = [signed(key, node=node.pk), signed(key, node=other.pk), {**signed(key, node=node.pk), "uptime_ppm": 1}]
    before = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    assert agent(token).post("/api/agent/reports/batch/", {"reports": reports}, format="json").status_code == 200
    groups = list(OutboxEvent.objects.filter(id__gt=before).order_by("id").values_list("group", flat=True))
    assert sorted(groups) == sorted(
        [live.OVERVIEW_GROUP, live.checker_group(checker_id), live.node_group(node.pk), live.node_group(other.pk)]
    )
    before = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first()
    agent(token).post("/api/agent/reports/batch/", {"reports": reports[:2]}, format="json")  # repeats only
    assert not OutboxEvent.objects.filter(id__gt=before).exists()

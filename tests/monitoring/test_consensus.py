"""Consensus: median of a quorum of reports, correctness by tolerance,
health score, and the node status it drives over epochs."""

import pytest

from apps.core.models import CheckerNode, NodeStatus
from apps.monitoring import assignment, consensus
from apps.monitoring.models import CheckerEpoch, CheckerReport, NodeEpoch

from ..factories import make_checker, make_node

P = {"sla_uptime_target": 990_000, "sla_uptime_cutoff": 800_000, "sla_max_latency_ms": 150, "suspend_after_epochs": 3}


def r(uptime, latency=40, spec=True, task=None):
    return {"uptime_ppm": uptime, "task_ppm": uptime if task is None else task, "latency_ms": latency, "spec_ok": spec}


def test_median_resists_one_outlier():
    v = consensus.consensus([r(1_000_000, 40), r(990_000, 45), r(0, 2000)], quorum=2)
    assert v.valid and v.uptime_ppm == 990_000 and v.latency_ms == 45 and v.spec_ok


def test_one_checker_claiming_an_answer_from_a_down_node_does_not_set_the_consensus():
    down = r(0, latency=None, spec=None)
    v = consensus.consensus([r(50_000, latency=1900, spec=True), down, down], quorum=2)
    assert v.valid and v.uptime_ppm == 0 and v.latency_ms is None and v.spec_ok is None
    # The two that found it down agree with the consensus; the odd one out does not.
    assert consensus.is_correct(down, v, uptime_tol=50_000, latency_tol=300_000)
    assert not consensus.is_correct(r(50_000, latency=1900, spec=True), v, uptime_tol=50_000, latency_tol=300_000)


def test_below_quorum_is_not_valid():
    assert not consensus.consensus([r(1_000_000)], quorum=2).valid
    assert not consensus.consensus([], quorum=2).valid


def test_even_count_takes_the_lower_middle_and_spec_needs_a_majority():
    v = consensus.consensus([r(900_000, spec=True), r(1_000_000, spec=False)], quorum=2)
    assert v.uptime_ppm == 900_000
    assert v.spec_ok is False  # a tie is not verified


def test_a_consensus_needs_a_quorum_of_reports_that_agree_with_it():
    tol = {"uptime_tol": 50_000, "latency_tol": 300_000}
    honest, liar = r(1_000_000, 4), r(420_000, 1500, spec=False)
    # One false checker among three: outvoted, and the only one judged incorrect.
    v, marks = consensus.judge([honest, liar, r(1_000_000, 5)], quorum=2, **tol)
    assert v.valid and v.uptime_ppm == 1_000_000 and v.spec_ok and marks == [True, False, True]
    # The third checker silent: two reports that disagree are no consensus. The
    # "median" would be the liar's lower uptime and a spec tie read as a
    # mismatch (the node suspended and slashed, the honest checker incorrect).
    v, marks = consensus.judge([honest, liar], quorum=2, **tol)
    assert not v.valid and marks == [None, None]
    assert consensus.next_status(NodeStatus.ONLINE, 0, v, P) == (NodeStatus.ONLINE, 0)
    # Two that agree make one.
    v, marks = consensus.judge([honest, r(990_000, 6)], quorum=2, **tol)
    assert v.valid and marks == [True, True]
    assert not consensus.judge([honest], quorum=2, **tol)[0].valid


def test_tolerances_decide_correctness():
    v = consensus.consensus([r(1_000_000, 100), r(1_000_000, 100), r(1_000_000, 100)], quorum=2)
    assert consensus.is_correct(r(950_000, 100), v, uptime_tol=50_000, latency_tol=300_000)  # exactly at
    assert not consensus.is_correct(r(949_999, 100), v, uptime_tol=50_000, latency_tol=300_000)
    assert consensus.is_correct(r(1_000_000, 130), v, uptime_tol=50_000, latency_tol=300_000)
    assert not consensus.is_correct(r(1_000_000, 131), v, uptime_tol=50_000, latency_tol=300_000)
    assert not consensus.is_correct(r(1_000_000, 100, spec=False), v, uptime_tol=50_000, latency_tol=300_000)
    # A few milliseconds apart always agree, whatever the percentage.
    tiny = consensus.consensus([r(1_000_000, 2)] * 3, quorum=2)
    assert consensus.is_correct(r(1_000_000, 22), tiny, uptime_tol=50_000, latency_tol=300_000)
    assert not consensus.is_correct(r(1_000_000, 23), tiny, uptime_tol=50_000, latency_tol=300_000)


def test_health_score():
    perfect = consensus.consensus([r(1_000_000, 20)] * 3, quorum=2)
    assert consensus.health_score(perfect, 150) == 1_000_000
    slow = consensus.consensus([r(1_000_000, 300)] * 3, quorum=2)
    assert consensus.health_score(slow, 150) == 1_000_000 - 150_000 // 2
    down = consensus.consensus([r(0, None, spec=False, task=0)] * 3, quorum=2)
    assert consensus.health_score(down, 150) == 0


@pytest.mark.parametrize(
    "uptimes, statuses",
    [
        ([999_000, 999_000], ["online", "online"]),
        ([950_000, 999_000], ["degraded", "online"]),
        ([700_000, 700_000, 700_000], ["degraded", "degraded", "suspended"]),
        ([700_000, 850_000, 700_000, 700_000], ["degraded", "degraded", "degraded", "degraded"]),
    ],
)
def test_status_transitions(uptimes, statuses):
    status, below = NodeStatus.PENDING, 0
    seen = []
    for u in uptimes:
        status, below = consensus.next_status(status, below, consensus.consensus([r(u)] * 3, 2), P)
        seen.append(status)
    assert seen == statuses


def test_false_spec_suspends_and_no_quorum_changes_nothing():
    lying = consensus.consensus([r(1_000_000, spec=False)] * 3, 2)
    assert consensus.next_status(NodeStatus.ONLINE, 0, lying, P) == (NodeStatus.SUSPENDED, 0)
    silent = consensus.consensus([r(0)], 2)
    assert consensus.next_status(NodeStatus.DEGRADED, 2, silent, P) == (NodeStatus.DEGRADED, 2)


def _report(epoch, node, checker, **values):
    # Honest by default: every connection answered, GPU facts only in an answer.
    values.setdefault("task_ppm", values.get("uptime_ppm", 1_000_000))
    fields = {
        "probes": 10,
        "uptime_ppm": 1_000_000,
        "latency_ms": 30,
        "spec_ok": True,
        "gpu_name_seen": node.gpu_model.name if values["task_ppm"] else "",
        "gpu_count_seen": node.gpu_count if values["task_ppm"] else 0,
        **values,
    }
    return CheckerReport.objects.create(
        epoch=epoch, node=node, checker=checker, payload_hash="x", signature="y", **fields
    )


def test_finalize_applies_consensus_once(genesis):
    node, _ = make_node()
    lonely, _ = make_node()
    checkers = [make_checker()[0] for _ in range(3)]
    assignment.fix_round(0)
    assigned = list(node.assignments.filter(epoch=0).values_list("checker_id", flat=True))
    by_id = {c.pk: c for c in checkers}
    _report(0, node, by_id[assigned[0]], uptime_ppm=1_000_000)
    _report(0, node, by_id[assigned[1]], uptime_ppm=995_000)
    _report(0, node, by_id[assigned[2]], uptime_ppm=100_000, task_ppm=100_000, latency_ms=900)  # the outlier
    # Only one report for the other node: no quorum.
    _report(0, lonely, by_id[next(iter(lonely.assignments.filter(epoch=0).values_list("checker_id", flat=True)))])

    assert consensus.finalize(0) is not None
    assert consensus.finalize(0) is None  # exactly once
    node.refresh_from_db(), lonely.refresh_from_db()
    assert node.status == NodeStatus.ONLINE and node.health_score == 996_500
    assert lonely.status == NodeStatus.PENDING
    ne = NodeEpoch.objects.get(epoch=0, node=node)
    assert (ne.valid, ne.reports, ne.uptime_ppm, ne.latency_ms) == (True, 3, 995_000, 30)
    assert not NodeEpoch.objects.get(epoch=0, node=lonely).valid
    outlier = CheckerEpoch.objects.get(epoch=0, checker_id=assigned[2])
    assert (outlier.correct, outlier.incorrect) == (0, 1)
    assert CheckerReport.objects.filter(epoch=0, node=node, correct=True).count() == 2
    assert CheckerReport.objects.filter(epoch=0, node=lonely, correct__isnull=True).count() == 1


def test_finalize_judges_nobody_when_two_reports_disagree(genesis):
    node, _ = make_node()
    [make_checker() for _ in range(3)]
    assignment.fix_round(0)
    first, second, silent = node.assignments.filter(epoch=0).values_list("checker", flat=True)
    node.status = NodeStatus.ONLINE
    node.save(update_fields=["status"])
    _report(0, node, CheckerNode.objects.get(pk=first))
    _report(
        0,
        node,
        CheckerNode.objects.get(pk=second),
        uptime_ppm=300_000,
        task_ppm=300_000,
        latency_ms=1500,
        spec_ok=False,
    )

    assert consensus.finalize(0) is not None
    node.refresh_from_db()
    assert node.status == NodeStatus.ONLINE  # not suspended on one checker's word
    ne = NodeEpoch.objects.get(epoch=0, node=node)
    assert (ne.valid, ne.reports, ne.spec_ok) == (False, 2, None)
    assert not CheckerReport.objects.filter(epoch=0, node=node, correct__isnull=False).exists()
    assert list(
        CheckerEpoch.objects.filter(epoch=0, checker_id__in=[first, second]).values_list("incorrect", flat=True)
    ) == [0, 0]

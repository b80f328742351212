"""Compute challenges in signed reports, through ingest, consensus and
settlement: a node whose challenges fail in consensus has a false spec and
loses its collateral; a checker that claims a pass its published rows do
not support is incorrect (and, its report false on its face, slashed and
jailed); the challenge data is public and re-verifiable; reports without a
challenge keep their bytes."""

import random
import secrets

import pytest

from apps.core.models import NodeStatus
from apps.monitoring import challenge, consensus, ingest, signing
from apps.monitoring.models import ChallengeResult, CheckerEpoch, CheckerReport, NodeEpoch
from apps.settlement import services
from apps.settlement.models import LineKind, SettlementLine

from .conftest import set_epoch

N, K = 64, 4


def run_challenge(epoch: int, node, checker, *, wrong: bool = False) -> dict:
    """What an honest checker signs after challenging ``node``: the node's
    product (with one wrong column when ``wrong``), k rows opened and checked."""
    nonce = secrets.token_bytes(16)
    seed = challenge.derive_seed(epoch, node.pk, checker.pk, nonce)
    product = challenge.product(seed, N)
    if wrong:
        product = product.copy()
        product[:, 3] += 1
    committed = challenge.commit(seed, product)
    rows = random.sample(range(N), K)
    openings = [(i, *committed.open(i)) for i in rows]
    try:
        challenge.verify_openings(seed, N, committed.root, openings)
        reason = ""
    except challenge.ChallengeFailed as exc:
        reason = str(exc)
    return {
        "n": N,
        "nonce": nonce.hex(),
        "seed": seed.hex(),
        "root": committed.root.hex(),
        "passed": not reason,
        "elapsed_ms": 12,
        "deadline_ms": 700,
        "rows": rows,
        "proofs": [[h.hex() for h in proof] for _, _, proof in openings],
        "reason": reason,
    }


@pytest.fixture
def keys(small_network):
    out = {}
    for checker in small_network["checkers"]:
        out[checker.pk] = signing.new_key()
        checker.public_key = signing.public_hex(out[checker.pk])
        checker.save(update_fields=["public_key"])
    return out


def signed(keys, epoch, node, checker, challenge_result, **values) -> dict:
    report = {
        "epoch": epoch,
        "node": node.pk,
        "probes": 10,
        "uptime_ppm": 1_000_000,
        "task_ppm": 1_000_000,
        "latency_ms": 30,
        "spec_ok": True,
        "gpu_name_seen": node.gpu_model.name,
        "gpu_count_seen": node.gpu_count,
        "workload_ppm": None,
        "challenge": challenge_result,
        **values,
    }
    report["signature"] = signing.sign(keys[checker.pk], report)
    return report


def submit(keys, epoch, node, checker, challenge_result, **values):
    return ingest.submit_report(checker, signed(keys, epoch, node, checker, challenge_result, **values))


def test_a_node_failing_its_challenges_in_consensus_is_slashed_and_suspended(small_network, keys):
    a, b, _ = small_network["nodes"]
    for checker in small_network["checkers"]:
        # A's agent reports the declared GPU, but its product is wrong.
        submit(keys, 6, a, checker, run_challenge(6, a, checker, wrong=True))
        submit(keys, 6, b, checker, run_challenge(6, b, checker))
    required = a.required_collateral
    set_epoch(7)
    result = services.settle(6)

    a.refresh_from_db(), b.refresh_from_db()
    assert (a.status, a.collateral) == (NodeStatus.SUSPENDED, 0)
    assert result.collateral_slashed == required
    assert SettlementLine.objects.filter(epoch=6, kind=LineKind.FALSE_SPEC_SLASH, node=a).exists()
    ne = NodeEpoch.objects.get(epoch=6, node=a)
    assert (ne.valid, ne.challenge_ok, ne.spec_ok) == (True, False, False)
    assert NodeEpoch.objects.get(epoch=6, node=b).challenge_ok is True
    assert b.status != NodeStatus.SUSPENDED
    # The honest checkers agreed: none of them is wrong.
    assert not CheckerReport.objects.filter(epoch=6, correct=False).exists()
    # Every challenge was re-verified on arrival: the failed rows do not verify.
    assert set(ChallengeResult.objects.filter(node=a).values_list("verified", flat=True)) == {False}
    assert set(ChallengeResult.objects.filter(node=b).values_list("verified", flat=True)) == {True}


def test_a_checker_claiming_a_pass_its_rows_do_not_support_is_incorrect_and_jailed(small_network, keys):
    a, b, _ = small_network["nodes"]
    honest1, honest2, liar = small_network["checkers"]
    for checker in (honest1, honest2):
        submit(keys, 6, a, checker, run_challenge(6, a, checker, wrong=True))
        submit(keys, 6, b, checker, run_challenge(6, b, checker))
    lie = {**run_challenge(6, a, liar, wrong=True), "passed": True, "reason": ""}
    submit(keys, 6, a, liar, lie)
    # And a failure made up for an honest node: its rows verify, so it is not
    # false on its face, but the majority outvotes it.
    submit(keys, 6, b, liar, {**run_challenge(6, b, liar), "passed": False, "reason": "made up"})
    set_epoch(7)
    services.settle(6)

    assert CheckerReport.objects.get(epoch=6, node=b, checker=liar).correct is False
    assert NodeEpoch.objects.get(epoch=6, node=b).challenge_ok is True
    evidence = consensus.disagreements(6)
    assert (evidence["challenge"], evidence["self_contradicting"]) == ({"reports": 1}, {"reports": 1})

    assert CheckerReport.objects.get(epoch=6, node=a, checker=liar).correct is False
    assert CheckerEpoch.objects.get(epoch=6, checker=liar).contradicting == 1
    liar.refresh_from_db()
    assert liar.status == "jailed"
    # The two honest checkers carry the consensus: the node's spec is false.
    assert NodeEpoch.objects.get(epoch=6, node=a).challenge_ok is False
    a.refresh_from_db()
    assert a.status == NodeStatus.SUSPENDED


def test_challenges_are_public_and_their_seed_bound_to_the_assignment(small_network, keys, client):
    a, _, _ = small_network["nodes"]
    c0, c1, _ = small_network["checkers"]
    good = run_challenge(6, a, c0)
    submit(keys, 6, a, c0, good)
    # A seed derived for another checker (or node, or epoch) is refused.
    with pytest.raises(ingest.IngestError, match="not derived"):
        submit(keys, 6, a, c1, run_challenge(6, a, c0))
    # Proofs of the wrong length, a missing field, too many rows: refused, nothing stored.
    short = run_challenge(6, a, c1)
    short["proofs"][0] = short["proofs"][0][:-1]
    with pytest.raises(ingest.IngestError, match="proof must list 6 hashes"):
        submit(keys, 6, a, c1, short)
    with pytest.raises(ingest.IngestError, match="exactly the fields"):
        submit(keys, 6, a, c1, {k: v for k, v in run_challenge(6, a, c1).items() if k != "root"})
    with pytest.raises(ingest.IngestError, match="rows must be a list of at most 64"):
        submit(keys, 6, a, c1, {**run_challenge(6, a, c1), "rows": list(range(65)), "proofs": []})
    assert ChallengeResult.objects.count() == 1

    listed = client.get(f"/api/monitoring/challenges/?node={a.pk}").json()["results"]
    assert [c["seed"] for c in listed] == [good["seed"]]
    one = client.get(f"/api/monitoring/challenges/{listed[0]['id']}/").json()
    assert (one["epoch"], one["node"], one["checker"], one["passed"], one["verified"]) == (6, a.pk, c0.pk, True, True)
    assert one["rows"] == good["rows"] and one["proofs"] == good["proofs"]
    assert client.get("/api/monitoring/challenges/?limit=1000").status_code == 400
    # The node's and the checker's pages show it.
    assert "Compute challenges" in client.get(f"/monitoring/nodes/{a.pk}/").content.decode()
    assert "Compute challenges" in client.get(f"/monitoring/checkers/{c0.pk}/").content.decode()


def test_a_report_without_a_challenge_keeps_its_signed_bytes():
    old = {
        "epoch": 3,
        "node": 9,
        "probes": 10,
        "uptime_ppm": 1_000_000,
        "task_ppm": 1_000_000,
        "latency_ms": 30,
        "spec_ok": True,
        "gpu_name_seen": "NVIDIA T4 16GB",
        "gpu_count_seen": 1,
    }
    before = (
        b'{"epoch":3,"gpu_count_seen":1,"gpu_name_seen":"NVIDIA T4 16GB","latency_ms":30,"node":9,'
        b'"probes":10,"spec_ok":true,"task_ppm":1000000,"uptime_ppm":1000000}'
    )
    assert signing.message(old) == signing.message({**old, "challenge": None}) == before
    carrying = {**old, "challenge": {"n": 64, "passed": True}}
    assert signing.message(carrying) != before and b'"challenge":{"n":64,"passed":true}' in signing.message(carrying)


def test_a_batch_resent_after_a_timeout_is_unchanged_and_judged_report_by_report(small_network, keys):
    """A checker whose batch timed out sends it again: every report already
    stored answers unchanged (not a refusal for its seed), a different
    report for a stored assignment is a conflict, and a bad one is refused
    without holding up the rest."""
    a, b, c = small_network["nodes"]
    c0 = small_network["checkers"][0]
    first = [signed(keys, 6, node, c0, run_challenge(6, node, c0)) for node in (a, b)]
    assert [r["status"] for r in ingest.submit_reports(c0, first)] == [201, 201]
    forged = {**signed(keys, 6, c, c0, run_challenge(6, c, c0)), "latency_ms": 1}
    changed = signed(keys, 6, a, c0, run_challenge(6, a, c0), latency_ms=31)
    results = ingest.submit_reports(c0, [*first, forged, changed])
    assert [r["status"] for r in results] == [200, 200, 400, 409]
    assert [r.get("created") for r in results[:2]] == [False, False]
    assert "signature" in results[2]["detail"] and "different report" in results[3]["detail"]
    assert CheckerReport.objects.filter(epoch=6, checker=c0).count() == ChallengeResult.objects.count() == 2


def test_a_batch_that_repeats_an_assignment_stores_it_once(small_network, keys):
    a, b, _ = small_network["nodes"]
    c0 = small_network["checkers"][0]
    report = signed(keys, 6, a, c0, run_challenge(6, a, c0))
    other = signed(keys, 6, a, c0, run_challenge(6, a, c0))
    results = ingest.submit_reports(c0, [report, report, other])
    assert [r["status"] for r in results] == [201, 200, 409]
    assert CheckerReport.objects.filter(epoch=6, node=a, checker=c0).count() == 1
    assert ChallengeResult.objects.get().seed == report["challenge"]["seed"]


def test_a_batch_costs_the_same_queries_for_one_report_or_many(small_network, keys):
    """A checker's whole epoch in one request: the database is read once per
    kind of fact and written once per table, whatever the batch's size."""
    import django.db
    from django.test.utils import CaptureQueriesContext

    a, b, c = small_network["nodes"]
    c0, c1 = small_network["checkers"][:2]
    with CaptureQueriesContext(django.db.connection) as one:
        ingest.submit_reports(c0, [signed(keys, 6, a, c0, run_challenge(6, a, c0))])
    reports = [signed(keys, 6, node, c1, run_challenge(6, node, c1)) for node in (a, b, c)]
    with CaptureQueriesContext(django.db.connection) as three:
        results = ingest.submit_reports(c1, reports)
    assert [r["status"] for r in results] == [201, 201, 201]
    assert len(three.captured_queries) == len(one.captured_queries)

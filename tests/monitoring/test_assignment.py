"""Who checks whom is deterministic and anyone can recompute it."""

import hashlib

from apps.core.models import CheckerStatus, NodeStatus
from apps.monitoring import assignment
from apps.monitoring.models import Assignment

from ..factories import make_checker, make_node


def independent_choice(epoch, node_id, checker_ids, r):
    """Written from the rule in the docs, not from the code."""

    def weight(c):
        return int(hashlib.sha256(f"{epoch}:{node_id}:{c}".encode()).hexdigest(), 16)

    return set(sorted(checker_ids, key=lambda c: (weight(c), c), reverse=True)[:r])


def test_assignments_recompute_independently(genesis):
    nodes = [make_node()[0] for _ in range(8)]
    checkers = [make_checker()[0] for _ in range(6)]
    make_checker(status=CheckerStatus.JAILED)
    make_checker(status=CheckerStatus.INACTIVE)
    suspended, _ = make_node()
    suspended.status = NodeStatus.SUSPENDED
    suspended.save()

    assert assignment.fix_round(5) == 8 * 3
    assert assignment.fix_round(5) == 8 * 3  # idempotent
    active_ids = [c.pk for c in checkers]
    for node in nodes:
        stored = set(Assignment.objects.filter(epoch=5, node=node).values_list("checker_id", flat=True))
        assert stored == independent_choice(5, node.pk, active_ids, 3)
    assert not Assignment.objects.filter(node=suspended).exists()
    # A different epoch reshuffles (with overwhelming probability for 8 nodes).
    assignment.fix_round(6)
    assert set(Assignment.objects.filter(epoch=6).values_list("node_id", "checker_id")) != set(
        Assignment.objects.filter(epoch=5).values_list("node_id", "checker_id")
    )
    assert assignment.verify(5)["ok"]


def test_verify_detects_every_forged_assignment(genesis):
    """Swapping any row's checker for any other checker is caught, also when
    the checker swapped out drew no other node (it vanishes from the rows,
    so a participant list read back from the rows would hide the forgery)."""
    nodes = [make_node()[0] for _ in range(3)]
    checkers = [make_checker()[0].pk for _ in range(5)]
    assignment.fix_round(1)
    assert assignment.verify(1)["ok"]
    for row in list(Assignment.objects.filter(epoch=1)):
        original = row.checker_id
        taken = set(Assignment.objects.filter(epoch=1, node=row.node).values_list("checker_id", flat=True))
        for forged in sorted(set(checkers) - taken):
            row.checker_id = forged
            row.save()
            result = assignment.verify(1)
            assert not result["ok"] and row.node_id in result["mismatches"], (row.node_id, original, forged)
        row.checker_id = original
        row.save()
    assert assignment.verify(1)["ok"]
    assert {n.pk for n in nodes} == set(assignment.participants(1)[1])


def test_verify_detects_removed_and_foreign_rows(genesis):
    nodes = [make_node()[0] for _ in range(3)]
    [make_checker() for _ in range(4)]
    assignment.fix_round(2)
    Assignment.objects.filter(epoch=2, node=nodes[1]).delete()
    assert assignment.verify(2)["mismatches"] == [nodes[1].pk]

    late, _ = make_node()  # registered after the round was fixed
    assert assignment.fix_round(2) == 2 * 3  # the round is not redrawn
    checker = Assignment.objects.filter(epoch=2).first().checker_id
    Assignment.objects.create(epoch=2, node=late, checker_id=checker)
    assert late.pk in assignment.verify(2)["mismatches"]


def test_rows_without_a_published_round_do_not_verify(genesis):
    node, _ = make_node()
    checker, _ = make_checker()
    Assignment.objects.create(epoch=3, node=node, checker=checker)
    result = assignment.verify(3)
    assert not result["ok"] and result["mismatches"] == [node.pk]
    assert assignment.verify(4) == {**assignment.verify(4), "ok": True, "assignments": 0}


def test_assignment_page_and_api_show_the_verification(client, genesis):
    make_node()
    [make_checker() for _ in range(3)]
    assignment.fix_round(0)
    body = client.get("/monitoring/assignments/?epoch=0").content.decode()
    assert "recompute exactly" in body
    data = client.get("/api/monitoring/assignments/0/verify/").json()
    assert data["ok"] and data["assignments"] == 3


def test_the_fast_ranking_is_the_documented_rule():
    """``choose`` skips integer conversion and full sorting; it must still
    pick exactly the checkers with the highest SHA-256("epoch:node:checker")."""
    import random

    rng = random.Random(5)
    for _ in range(300):
        epoch, node = rng.randrange(10_000), rng.randrange(1, 10**7)
        ids = rng.sample(range(1, 10**6), rng.randint(1, 60))
        r = rng.randint(1, 5)
        expected = sorted(ids, key=lambda c: (assignment.score(epoch, node, c), c), reverse=True)[:r]
        assert assignment.choose(epoch, node, ids, r) == expected
        assert set(expected) == independent_choice(epoch, node, ids, r)

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

    assert assignment.ensure_assignments(5) == 8 * 3
    assert assignment.ensure_assignments(5) == 8 * 3  # idempotent
    active_ids = [c.pk for c in checkers]
    for node in nodes:
        stored = set(Assignment.objects.filter(epoch=5, node=node).values_list("checker_id", flat=True))
        assert stored == independent_choice(5, node.pk, active_ids, 3)
    assert not Assignment.objects.filter(node=suspended).exists()
    # A different epoch reshuffles (with overwhelming probability for 8 nodes).
    assignment.ensure_assignments(6)
    assert set(Assignment.objects.filter(epoch=6).values_list("node_id", "checker_id")) != set(
        Assignment.objects.filter(epoch=5).values_list("node_id", "checker_id")
    )
    assert assignment.verify(5)["ok"]


def test_verify_detects_a_forged_assignment(genesis):
    nodes = [make_node()[0] for _ in range(3)]
    [make_checker() for _ in range(5)]
    assignment.ensure_assignments(1)
    row = Assignment.objects.filter(epoch=1, node=nodes[0]).first()
    others = set(Assignment.objects.filter(epoch=1).values_list("checker_id", flat=True)) - set(
        Assignment.objects.filter(epoch=1, node=nodes[0]).values_list("checker_id", flat=True)
    )
    row.checker_id = sorted(others)[0]
    row.save()
    result = assignment.verify(1)
    assert not result["ok"] and nodes[0].pk in result["mismatches"]


def test_assignment_page_and_api_show_the_verification(client, genesis):
    make_node()
    [make_checker() for _ in range(3)]
    assignment.ensure_assignments(0)
    body = client.get("/monitoring/assignments/?epoch=0").content.decode()
    assert "recompute exactly" in body
    data = client.get("/api/monitoring/assignments/0/verify/").json()
    assert data["ok"] and data["assignments"] == 3

"""Who checks whom is deterministic and anyone can recompute it."""

import hashlib
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.core.models import CheckerStatus, NodeStatus
from apps.monitoring import assignment
from apps.monitoring.models import Assignment, AssignmentRound

from ..factories import make_checker, make_node


def independent_ring(epoch, node_ids, checker_ids, r):
    """Written from the rule in the docs, not from the code: checkers own
    equal arcs in the order of their keys, nodes sit at evenly spaced points
    in the order of theirs, and each node walks clockwise from the arc its
    point falls in, collecting distinct checkers."""

    def key(kind, ident):
        return int(hashlib.sha256(f"{epoch}:{kind}:{ident}".encode()).hexdigest(), 16)

    arcs = sorted(checker_ids, key=lambda c: (key("checker", c), c))
    points = sorted(node_ids, key=lambda n: (key("node", n), n))
    result = {}
    for k, node in enumerate(points):
        where = Fraction(k, len(points))
        owner = max(j for j in range(len(arcs)) if Fraction(j, len(arcs)) <= where) if arcs else 0
        chosen, j = [], owner
        while len(chosen) < min(r, len(arcs)):
            if arcs[j % len(arcs)] not in chosen:
                chosen.append(arcs[j % len(arcs)])
            j += 1
        result[node] = set(chosen)
    return result


def independent_choice(epoch, node_id, checker_ids, r):
    """The legacy rendezvous rule, written from its docs."""

    def weight(c):
        return int(hashlib.sha256(f"{epoch}:{node_id}:{c}".encode()).hexdigest(), 16)

    return set(sorted(checker_ids, key=lambda c: (weight(c), c), reverse=True)[:r])


ids = st.lists(st.integers(min_value=1, max_value=10**9), unique=True, max_size=60)


@settings(max_examples=300, deadline=None)
@given(epoch=st.integers(min_value=0, max_value=10**6), nodes=ids, checkers=ids, r=st.integers(1, 6))
def test_the_ring_is_the_documented_rule(epoch, nodes, checkers, r):
    got = assignment.ring(epoch, nodes, checkers, r)
    assert set(got) == set(nodes)
    expected = independent_ring(epoch, nodes, checkers, r)
    for node in nodes:
        assert len(got[node]) == len(set(got[node])) == min(r, len(checkers))
        assert set(got[node]) == expected[node]


@settings(max_examples=300, deadline=None)
@given(
    epoch=st.integers(min_value=0, max_value=10**6),
    n=st.integers(min_value=1, max_value=3_000),
    c=st.integers(min_value=1, max_value=400),
    r=st.integers(1, 5),
)
def test_every_checker_gets_its_fair_share_within_one_node(epoch, n, c, r):
    """The balance bound: each checker's load is floor or ceil of N*R/C
    (checkers beyond the node count may get none when N*R < C)."""
    got = assignment.loads(assignment.ring(epoch, range(1, n + 1), range(7, 7 + c), r))
    counts = [got.get(checker, 0) for checker in range(7, 7 + c)]
    share = Fraction(n * min(r, c), c)
    assert sum(counts) == n * min(r, c)
    assert all(int(share) <= x <= -(-share.numerator // share.denominator) for x in counts), (share, counts)


def test_a_new_epoch_reshuffles_the_ring():
    nodes, checkers = list(range(1, 200)), list(range(1, 40))
    assert assignment.ring(1, nodes, checkers, 3) != assignment.ring(2, nodes, checkers, 3)


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
    expected = independent_ring(5, [n.pk for n in nodes], active_ids, 3)
    for node in nodes:
        stored = set(Assignment.objects.filter(epoch=5, node=node).values_list("checker_id", flat=True))
        assert stored == expected[node.pk]
    assert AssignmentRound.objects.get(epoch=5).rule == assignment.RING
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


def test_rounds_fixed_under_rendezvous_still_verify(genesis):
    """A round published before the ring keeps verifying under its own rule,
    and a row forged into it is still caught."""
    nodes = [make_node()[0].pk for _ in range(5)]
    checkers = [make_checker()[0].pk for _ in range(6)]
    AssignmentRound.objects.create(epoch=9, replication=3, checker_ids=checkers, node_ids=nodes, rule="rendezvous")
    Assignment.objects.bulk_create(
        Assignment(epoch=9, node_id=n, checker_id=c) for n in nodes for c in independent_choice(9, n, checkers, 3)
    )
    result = assignment.verify(9)
    assert result["ok"] and result["rule"] == "rendezvous" and result["assignments"] == 15
    row = Assignment.objects.filter(epoch=9, node_id=nodes[0]).first()
    row.checker_id = next(c for c in checkers if c not in independent_choice(9, nodes[0], checkers, 3))
    row.save()
    assert assignment.verify(9)["mismatches"] == [nodes[0]]

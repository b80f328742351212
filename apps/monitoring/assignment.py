"""Who checks whom: a ranked hash ring.

For epoch ``e`` every active checker ``c`` gets the key
``SHA-256("e:checker:c")`` and every checked node ``n`` the key
``SHA-256("e:node:n")``. The C checkers, in ascending key order, own C
equal arcs of a ring ([j/C, (j+1)/C) for the j-th); the N nodes, in
ascending key order, sit at the evenly spaced points k/N. The node at point
k/N falls in the arc of checker ``floor(k*C/N)`` and is checked by that
checker and the R-1 next ones clockwise (R = p(replication), at most C).
Because both sides are spaced evenly, every checker gets ``floor(N*R/C)``
or ``ceil(N*R/C)`` nodes: a ring with V hashed points per checker leaves
each checker's load as uneven as the nodes that happen to hash into its
arcs (about ±1/sqrt(N*R/C) however large V is; see bench/assignment.py).
Cost: one hash per node and per checker and two sorts, i.e. about
N*log(N) + C*log(C) + N*R, instead of rendezvous's N*C hashes.

Anyone holding the lists of checkers and nodes published for the round can
recompute every pair. The scheduler fixes each round once, when its epoch
starts (``fix_round``); the lists are stored as the epoch's
``AssignmentRound`` with the rows and the rule's name; the page and the API
publish it and re-derive the assignments from it. Rounds fixed before the
ring (rule ``rendezvous``) still verify by their own rule: the highest
``SHA-256("e:n:c")`` over every checker.
"""

import hashlib
import heapq

from django.db import IntegrityError, connections, router, transaction

from apps.core import parameters
from apps.core.models import CHECKED_STATUSES, CheckerNode, CheckerStatus, GpuNode

from .models import Assignment, AssignmentRound

RING = "ranked-ring"
RENDEZVOUS = "rendezvous"
RULES = (RING, RENDEZVOUS)


def score(epoch: int, node_id: int, checker_id: int) -> int:
    """The legacy rendezvous score of a (node, checker) pair."""
    return int.from_bytes(hashlib.sha256(f"{epoch}:{node_id}:{checker_id}".encode()).digest(), "big")


def choose(epoch: int, node_id: int, checker_ids: list[int], replication: int) -> list[int]:
    """Legacy rendezvous rule: the ``replication`` checkers for ``node_id``
    in ``epoch``, best first (ties, which SHA-256 makes vanishingly rare, to
    the higher id). Kept to verify rounds fixed under it.

    The hash of the common "epoch:node:" prefix is computed once per node,
    and 32-byte big-endian digests compare as bytes exactly as their
    integers do, so none is converted."""
    prefix = hashlib.sha256(f"{epoch}:{node_id}:".encode())

    def key(checker_id: int) -> tuple[bytes, int]:
        digest = prefix.copy()
        digest.update(str(checker_id).encode())
        return digest.digest(), checker_id

    return heapq.nlargest(replication, checker_ids, key=key)


def _ranked(epoch: int, kind: str, ids) -> list[int]:
    """``ids`` in ascending order of ``SHA-256("epoch:kind:id")`` (ties, which
    SHA-256 makes vanishingly rare, to the lower id)."""
    prefix = hashlib.sha256(f"{epoch}:{kind}:".encode())

    def key(ident: int) -> tuple[bytes, int]:
        digest = prefix.copy()
        digest.update(str(ident).encode())
        return digest.digest(), ident

    return sorted(ids, key=key)


def ring(epoch: int, node_ids, checker_ids, replication: int) -> dict[int, list[int]]:
    """Every node's checkers under the ranked ring, clockwise from the arc
    its point falls in (see the module's docstring)."""
    checkers = _ranked(epoch, "checker", checker_ids)
    nodes = _ranked(epoch, "node", node_ids)
    c, n = len(checkers), len(nodes)
    r = min(replication, c)
    # The ring twice over, so a node's R checkers are one slice.
    doubled = checkers + checkers
    return {node: doubled[k * c // n : k * c // n + r] for k, node in enumerate(nodes)}


def assign(rule: str, epoch: int, node_ids, checker_ids, replication: int) -> dict[int, list[int]]:
    """Every node's checkers under ``rule`` (one of ``RULES``)."""
    if rule == RING:
        return ring(epoch, node_ids, checker_ids, replication)
    if rule == RENDEZVOUS:
        return {n: choose(epoch, n, checker_ids, replication) for n in node_ids}
    raise ValueError(f"unknown assignment rule {rule!r}")


def loads(assigned: dict[int, list[int]]) -> dict[int, int]:
    """How many nodes each checker was given."""
    count: dict[int, int] = {}
    for checkers in assigned.values():
        for c in checkers:
            count[c] = count.get(c, 0) + 1
    return count


def round_fixed(epoch: int) -> bool:
    return AssignmentRound.objects.filter(epoch=epoch).exists()


def fix_round(epoch: int) -> int:
    """Fix ``epoch``'s assignment round (idempotent; returns its row count).

    The scheduler calls this when the epoch starts (docs/rules.md §5),
    never an agent: the round uses the checkers active and the nodes in a
    checked status at that moment, so jailing and suspension decided by a
    settlement take effect from the next round fixed after it. The
    participants are published as the epoch's ``AssignmentRound`` with the
    rows, in one transaction; a round with nobody in it is recorded too, so
    an epoch's round is fixed exactly once whatever happens later (a
    restarted scheduler finds it and fixes no second one)."""
    if round_fixed(epoch):
        return Assignment.objects.filter(epoch=epoch).count()
    checker_ids = list(
        CheckerNode.objects.filter(status=CheckerStatus.ACTIVE).order_by("id").values_list("id", flat=True)
    )
    node_ids = list(GpuNode.objects.filter(status__in=CHECKED_STATUSES).order_by("id").values_list("id", flat=True))
    replication = parameters.get("replication", epoch)
    assigned = ring(epoch, node_ids, checker_ids, replication)
    try:
        with transaction.atomic():
            # The round's unique epoch elects one writer when callers race;
            # the loser's rows would have been identical anyway.
            AssignmentRound.objects.create(
                epoch=epoch, replication=replication, checker_ids=checker_ids, node_ids=node_ids, rule=RING
            )
            _insert(epoch, assigned)
    except IntegrityError:
        pass
    return Assignment.objects.filter(epoch=epoch).count()


def _insert(epoch: int, assigned: dict[int, list[int]]) -> None:
    """The round's rows in bulk: COPY on PostgreSQL, one prepared insert
    run for every row elsewhere. At 100,000 nodes that is 300,000 rows, and
    building a model instance for each took longer than choosing them."""
    connection = connections[router.db_for_write(Assignment)]
    q, meta = connection.ops.quote_name, Assignment._meta
    table = q(meta.db_table)
    columns = ", ".join(q(meta.get_field(f).column) for f in ("epoch", "node", "checker"))
    rows = [(epoch, n, c) for n, checkers in assigned.items() for c in checkers]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s)", rows)


def participants(epoch: int) -> tuple[list[int], list[int]]:
    """The checker ids and node ids published for ``epoch``'s assignment."""
    published = AssignmentRound.objects.filter(epoch=epoch).first()
    if published is None:
        return [], []
    return list(published.checker_ids), list(published.node_ids)


def verify(epoch: int) -> dict:
    """Recompute ``epoch``'s assignments from its published participants,
    under the rule the round names, and compare them with the stored rows:
    a node whose rows differ, a row for a node that did not take part, or
    rows with no published round at all are all mismatches."""
    published = AssignmentRound.objects.filter(epoch=epoch).first()
    stored: dict[int, set[int]] = {}
    for n, c in Assignment.objects.filter(epoch=epoch).values_list("node_id", "checker_id").iterator(chunk_size=20_000):
        stored.setdefault(n, set()).add(c)
    if published is None:
        checker_ids, node_ids, rule = [], [], RING
        replication = parameters.get("replication", epoch)
    else:
        checker_ids, node_ids = list(published.checker_ids), list(published.node_ids)
        replication, rule = published.replication, published.rule
    expected = assign(rule, epoch, node_ids, checker_ids, replication)
    mismatches = [n for n in node_ids if set(expected[n]) != stored.get(n, set())]
    mismatches += sorted(set(stored) - set(node_ids))
    return {
        "epoch": epoch,
        "rule": rule,
        "replication": replication,
        "checkers": checker_ids,
        "nodes": len(node_ids),
        "assignments": sum(len(v) for v in stored.values()),
        "mismatches": mismatches,
        "ok": not mismatches,
    }

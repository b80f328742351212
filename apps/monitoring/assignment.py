"""Who checks whom: rendezvous (highest-random-weight) hashing.

For epoch ``e`` and node ``n`` every active checker ``c`` gets the score
``SHA-256("e:n:c")`` read as a big-endian integer; the ``R`` checkers with
the highest scores are assigned. Anyone holding the list of checkers active
when the epoch's round was fixed can recompute every pair. The scheduler
fixes each round once, when its epoch starts (``fix_round``); the lists of
checkers and nodes are stored as the epoch's ``AssignmentRound`` with the
rows; the page and the API publish it and re-derive the
assignments from it.
"""

import hashlib
import heapq

from django.db import IntegrityError, transaction

from apps.core import parameters
from apps.core.models import CHECKED_STATUSES, CheckerNode, CheckerStatus, GpuNode

from .models import Assignment, AssignmentRound


def score(epoch: int, node_id: int, checker_id: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{epoch}:{node_id}:{checker_id}".encode()).digest(), "big")


def choose(epoch: int, node_id: int, checker_ids: list[int], replication: int) -> list[int]:
    """The ``replication`` checkers for ``node_id`` in ``epoch``, best first
    (ties, which SHA-256 makes vanishingly rare, to the higher id).

    The same order as ranking by :func:`score`, three times faster: the
    hash of the common "epoch:node:" prefix is computed once per node, and
    32-byte big-endian digests compare as bytes exactly as their integers
    do, so none is converted. This runs for every (node, checker) pair."""
    prefix = hashlib.sha256(f"{epoch}:{node_id}:".encode())

    def key(checker_id: int) -> tuple[bytes, int]:
        digest = prefix.copy()
        digest.update(str(checker_id).encode())
        return digest.digest(), checker_id

    return heapq.nlargest(replication, checker_ids, key=key)


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
    rows = [
        Assignment(epoch=epoch, node_id=n, checker_id=c)
        for n in node_ids
        for c in choose(epoch, n, checker_ids, replication)
    ]
    try:
        with transaction.atomic():
            # The round's unique epoch elects one writer when callers race;
            # the loser's rows would have been identical anyway.
            AssignmentRound.objects.create(
                epoch=epoch, replication=replication, checker_ids=checker_ids, node_ids=node_ids
            )
            Assignment.objects.bulk_create(rows, batch_size=2000)
    except IntegrityError:
        pass
    return Assignment.objects.filter(epoch=epoch).count()


def participants(epoch: int) -> tuple[list[int], list[int]]:
    """The checker ids and node ids published for ``epoch``'s assignment."""
    published = AssignmentRound.objects.filter(epoch=epoch).first()
    if published is None:
        return [], []
    return list(published.checker_ids), list(published.node_ids)


def verify(epoch: int) -> dict:
    """Recompute ``epoch``'s assignments from its published participants and
    compare them with the stored rows: a node whose rows differ, a row for a
    node that did not take part, or rows with no published round at all are
    all mismatches."""
    published = AssignmentRound.objects.filter(epoch=epoch).first()
    stored: dict[int, set[int]] = {}
    for n, c in Assignment.objects.filter(epoch=epoch).values_list("node_id", "checker_id"):
        stored.setdefault(n, set()).add(c)
    if published is None:
        checker_ids, node_ids = [], []
        replication = parameters.get("replication", epoch)
    else:
        checker_ids, node_ids = list(published.checker_ids), list(published.node_ids)
        replication = published.replication
    mismatches = [n for n in node_ids if set(choose(epoch, n, checker_ids, replication)) != stored.get(n, set())]
    mismatches += sorted(set(stored) - set(node_ids))
    return {
        "epoch": epoch,
        "replication": replication,
        "checkers": checker_ids,
        "nodes": len(node_ids),
        "assignments": sum(len(v) for v in stored.values()),
        "mismatches": mismatches,
        "ok": not mismatches,
    }

"""The heartbeat table's partitions on PostgreSQL (docs/rules.md §15).

On PostgreSQL ``monitoring_heartbeat`` is partitioned by RANGE of
``epoch`` (migration 0014), one partition per ``HEARTBEAT_PARTITION_EPOCHS``
epochs, ``[k * span, (k + 1) * span)``, plus a DEFAULT partition that
catches any epoch no partition covers, so no insert lacks a partition. The
scheduler creates the current span's partition and the next one ahead of
time (``ensure``); retention drops a whole partition once every epoch in it
is past the window and settled (``retention.prune``). The one insert that
can fail is one routed to the DEFAULT partition just as ``ensure`` attaches
the partition its row belongs to (``moved_under_insert``): written again in
a new transaction, it lands in the new partition. Other databases keep
one plain table: every function here does nothing there.

A partition is named after its bounds, ``monitoring_heartbeat_<lo>_<hi>``
(epochs ``lo`` to ``hi - 1``). Changing the span later is safe: a new
partition only ever covers epochs no existing one does."""

import logging
import re

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connections, router, transaction

from .models import Heartbeat

log = logging.getLogger(__name__)

# Serialises partition changes between processes (a scheduler and a manual
# prune, say): any constant the rest of the project does not use.
LOCK = 0x6862_7061_7274  # "hbpart"
BOUND = re.compile(r"FOR VALUES FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")


def _connection():
    return connections[router.db_for_write(Heartbeat)]


def enabled(connection=None) -> bool:
    """Whether the heartbeat table is partitioned (PostgreSQL, migrated)."""
    connection = connection or _connection()
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [Heartbeat._meta.db_table])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def span() -> int:
    return max(1, int(settings.HEARTBEAT_PARTITION_EPOCHS))


def span_of(epoch: int, size: int | None = None) -> tuple[int, int]:
    """The bounds ``[lo, hi)`` of the span holding ``epoch``."""
    size = size or span()
    lo = epoch // size * size
    return lo, lo + size


def name(lo: int, hi: int) -> str:
    return f"{Heartbeat._meta.db_table}_{lo}_{hi}"


def default_name() -> str:
    return f"{Heartbeat._meta.db_table}_default"


def partitions(connection=None) -> list[tuple[str, int, int]]:
    """The table's ranged partitions as (name, lo, hi), ascending (the
    DEFAULT partition is not among them)."""
    connection = connection or _connection()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
            [Heartbeat._meta.db_table],
        )
        rows = cursor.fetchall()
    found = []
    for relname, bound in rows:
        m = BOUND.search(bound or "")
        if m:
            found.append((relname, int(m.group(1)), int(m.group(2))))
    return sorted(found, key=lambda p: p[1])


def _gaps(lo: int, hi: int, existing) -> list[tuple[int, int]]:
    """The parts of ``[lo, hi)`` no existing partition covers."""
    gaps, start = [], lo
    for _, a, b in existing:
        if b <= start or a >= hi:
            continue
        if a > start:
            gaps.append((start, a))
        start = max(start, b)
    if start < hi:
        gaps.append((start, hi))
    return gaps


def moved_under_insert(exc: BaseException) -> bool:
    """Whether a write failed because a partition was attached under it: an
    insert routed to the DEFAULT partition waited for ``ensure``'s lock on it,
    and once the partition for its epochs was attached its row no longer
    fitted the DEFAULT partition (a check violation of the partition
    constraint). The same write in a new transaction succeeds."""
    cause = exc.__cause__
    return (
        isinstance(exc, IntegrityError)
        and getattr(cause, "sqlstate", None) == "23514"
        and "partition constraint" in str(cause)
    )


def ensure(epoch: int, ahead: int = 1, connection=None, lock_timeout_ms: int = 5_000) -> list[str]:
    """Create the partitions of ``epoch``'s span and the ``ahead`` spans
    after it, where missing (idempotent; returns the names created).

    A new partition is built beside the table and attached (a lock that
    blocks no reader or writer of the table), after taking over any rows
    the DEFAULT partition holds for its epochs: attaching a range the
    DEFAULT partition has rows of would fail. The DEFAULT partition is
    locked meanwhile (no sample lands there between the move and the
    attach); a lock not granted within ``lock_timeout_ms`` raises, and
    nothing is changed."""
    connection = connection or _connection()
    if not enabled(connection):
        return []
    size = span()
    lo = span_of(epoch, size)[0]
    wanted = [(lo + k * size, lo + (k + 1) * size) for k in range(ahead + 1)]
    existing = partitions(connection)
    if not any(_gaps(a, b, existing) for a, b in wanted):
        return []
    created = []
    q = connection.ops.quote_name
    table = q(Heartbeat._meta.db_table)
    epoch_col = q(Heartbeat._meta.get_field("epoch").column)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK])
        existing = partitions(connection)  # as of holding the lock
        cursor.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
        cursor.execute(f"LOCK TABLE {q(default_name())} IN ACCESS EXCLUSIVE MODE")
        for a, b in wanted:
            for g_lo, g_hi in _gaps(a, b, existing):
                part = q(name(g_lo, g_hi))
                cursor.execute(f"CREATE TABLE {part} (LIKE {table} INCLUDING CONSTRAINTS)")
                cursor.execute(
                    f"WITH moved AS (DELETE FROM {q(default_name())} WHERE {epoch_col} >= %s AND {epoch_col} < %s "
                    f"RETURNING *) INSERT INTO {part} SELECT * FROM moved",
                    [g_lo, g_hi],
                )
                cursor.execute(
                    f"ALTER TABLE {table} ATTACH PARTITION {part} FOR VALUES FROM ({int(g_lo)}) TO ({int(g_hi)})"
                )
                created.append(name(g_lo, g_hi))
    if created:
        log.info("heartbeat partitions created: %s", ", ".join(created))
    return created


def ensure_current(connection=None) -> list[str]:
    """``ensure`` for the current epoch and the next span; never raises (a
    failure is logged: the DEFAULT partition takes the samples meanwhile,
    and the next call tries again)."""
    from apps.core import epochs

    connection = connection or _connection()
    if connection.vendor != "postgresql" or epochs.genesis_time() is None:
        return []
    try:
        return ensure(epochs.current_number(), connection=connection)
    except DatabaseError:
        log.exception("could not create the heartbeat partitions ahead; the default partition takes the samples")
        return []


def drop(part: str, lo: int, hi: int, connection=None, lock_timeout_ms: int = 5_000) -> bool:
    """Detach and drop partition ``part`` (bounds ``lo``, ``hi``); False,
    with nothing changed, when the table's lock was not granted within
    ``lock_timeout_ms`` (a long read of the table holds it: the next prune
    tries again rather than queue every insert behind it)."""
    connection = connection or _connection()
    q = connection.ops.quote_name
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK])
            cursor.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
            cursor.execute(f"ALTER TABLE {q(Heartbeat._meta.db_table)} DETACH PARTITION {q(part)}")
            cursor.execute(f"DROP TABLE {q(part)}")
    except DatabaseError as exc:
        log.warning("heartbeat partition %s (epochs %s to %s) not dropped: %s", part, lo, hi - 1, exc)
        return False
    return True

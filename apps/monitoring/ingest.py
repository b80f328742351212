"""What agents send: heartbeats (telemetry) and checker reports.

Validation is hand-written rather than a serializer per sample: heartbeats
are the hottest path in the product (see bench/ingest.py), and a batch is
all-or-nothing: one bad sample refuses the whole batch with its index.

Each write commits together with its live hint (``live.py``), so the
functions here open their own transactions; the API only calls them.
"""

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, router, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core import epochs, errors
from apps.core.models import AgentToken, CheckerNode, GpuNode

from . import challenge_reports, live, partitions, signing
from .models import Assignment, ChallengeResult, CheckerReport, EpochConsensus, Heartbeat, record_key

log = logging.getLogger(__name__)

MAX_BATCH = 500
# (field, minimum, maximum)
SAMPLE_FIELDS = (
    ("gpu_util", 0, 100),
    ("mem_used_mb", 0, 10_000_000),
    ("mem_total_mb", 0, 10_000_000),
    ("temperature_c", -50, 150),
    ("power_w", 0, 100_000),
    ("workloads", 0, 10_000),
)
# The facts a node's agent sends with its samples ("facts": {...}).
CUDA_VERSION = re.compile(r"\d{1,3}\.\d{1,3}")
MAX_DISK_GB = 1_000_000_000
CLOCK_SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(hours=1)


# The epoch clock (genesis time, epoch length) for stamping samples, cached
# briefly: two queries per batch otherwise, on the hottest path there is.
CLOCK_TTL = 2.0
_clock: tuple[float, object, object] | None = None


def _epoch_clock():
    global _clock
    now = time.monotonic()
    if _clock is None or now > _clock[0]:
        _clock = (now + CLOCK_TTL, epochs.genesis_time(), epochs.length())
    return _clock[1], _clock[2]


class IngestError(errors.DomainError):
    """Bad payload: the message says what and where; nothing was written."""


class Conflict(IngestError, errors.Conflict):
    """A different payload for something already recorded (a second,
    different report for the same assignment, another public key)."""


def _int(value, name, lo, hi, where=""):
    if isinstance(value, bool) or not isinstance(value, int):
        raise IngestError(f"{where}{name} must be an integer.")
    if not lo <= value <= hi:
        raise IngestError(f"{where}{name} must be between {lo} and {hi}.")
    return value


def _parse_time(value):
    if not isinstance(value, str):
        return None
    try:
        # The C parser first (what agents send, ten times faster per
        # sample), Django's for the ISO forms it does not read.
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    try:
        return parse_datetime(value)
    except ValueError:  # well formed but impossible, e.g. month 13
        return None


class TokenRevoked(Exception):
    """The agent token a cached authentication vouched for is gone (revoked,
    re-issued or its node deleted): nothing was written. The API answers
    401, as for an unknown token."""


@dataclass
class HeartbeatBatch:
    """A batch of samples that passed every check (``parse_heartbeats``),
    ready to store (``store_heartbeats``)."""

    node_id: int
    rows: list[tuple]  # one per instant: node, at, epoch, then SAMPLE_FIELDS
    count: int  # samples sent (repeats of an instant included)
    facts: dict | None
    facts_ignored: str  # why the facts sent were left out ("" if they were not)


def record_heartbeats(
    node_id: int, payload, *, token_id: int | None = None, token_used_at: datetime | None = None
) -> tuple[int, str]:
    """Store a batch of telemetry samples for node ``node_id``, and the facts
    sent with it; returns how many samples were accepted, and why the facts
    were ignored ("" when they were not). ``parse_heartbeats`` then
    ``store_heartbeats``, which say the rest."""
    batch = parse_heartbeats(node_id, payload)
    store_heartbeats(batch, token_id=token_id, token_used_at=token_used_at)
    return batch.count, batch.facts_ignored


def parse_heartbeats(node_id: int, payload) -> HeartbeatBatch:
    """Check a batch as an agent posted it (``{"samples": [...], "facts":
    {...}}``) without touching the database: ``IngestError`` names the first
    value refused, and a batch is refused whole."""
    samples = payload.get("samples") if isinstance(payload, dict) else None
    if not isinstance(samples, list) or not samples:
        raise IngestError('Send {"samples": [...]} with at least one sample.')
    if len(samples) > MAX_BATCH:
        raise IngestError(f"At most {MAX_BATCH} samples per batch.")
    now = timezone.now()
    start0, size = _epoch_clock()
    rows = {}
    for i, sample in enumerate(samples):
        if not isinstance(sample, dict):
            raise IngestError(f"samples[{i}] must be an object.")
        values = [_int(sample.get(name), name, lo, hi, f"samples[{i}].") for name, lo, hi in SAMPLE_FIELDS]
        at = now
        if sample.get("at") is not None:
            at = _parse_time(sample["at"])
            if at is None or at.tzinfo is None:
                raise IngestError(f"samples[{i}].at must be an ISO 8601 time with a zone.")
            if at > now + CLOCK_SKEW or at < now - MAX_AGE:
                raise IngestError(f"samples[{i}].at is too far from the server's clock.")
        epoch = int((at - start0) // size) if start0 and at >= start0 else 0
        # One sample per instant: the first of a batch's repeats stands,
        # as the first stored stands against a resent batch.
        rows.setdefault(at, (node_id, at, epoch, *values))
    facts, facts_ignored = None, ""
    if payload.get("facts") is not None:
        try:
            facts = parse_facts(payload["facts"])
        except IngestError as exc:
            # The samples keep the node online; a fact the dashboard cannot
            # read is left out, and the answer says why.
            facts_ignored = str(exc.args[0])
            log.info("node %s: facts ignored: %s", node_id, facts_ignored)
    return HeartbeatBatch(node_id, list(rows.values()), len(samples), facts, facts_ignored)


def store_heartbeats(
    batch: HeartbeatBatch, *, token_id: int | None = None, token_used_at: datetime | None = None
) -> None:
    """Store a checked batch. The samples (and facts) and the telemetry
    hint land together or not at all, and this
    returns once they are committed. A sample is stored once per node and
    instant: an agent that resends a batch whose answer it lost (same ``at``
    times) adds nothing. With ``token_id`` the insert itself requires that
    token to still exist and act for the node, so a caller may authenticate
    from a cache (see ``auth.agent_token``) and a token revoked since writes
    nothing: ``TokenRevoked``. ``token_used_at``: that token's last-used time
    to record, in the same transaction.

    Batches that arrive together share a commit (``GroupCommit``); inside a
    caller's transaction the batch is written in it, as any write is."""

    def write():
        _store(batch.rows, batch.node_id, token_id, token_used_at)
        if batch.facts is not None:
            # Written only when they changed: the node row is the marketplace's hot row.
            GpuNode.objects.filter(pk=batch.node_id).exclude(**batch.facts).update(**batch.facts)
        live.telemetry_arrived(batch.node_id)

    alias = router.db_for_write(Heartbeat)
    if connections[alias].in_atomic_block:
        with transaction.atomic(using=alias):
            write()
    else:
        _heartbeat_commits.run(write, using=alias)


class NotStored(Exception):
    """The transaction that was to hold a batch ended without committing it
    (the thread writing it was interrupted): nothing of the batch is stored."""


class _Job:
    __slots__ = ("write", "done", "error", "wake")

    def __init__(self, write):
        self.write = write
        self.done = False
        self.error: BaseException | None = None
        # Held from the start; released once, to wake the job's thread:
        # when its write is committed (or failed), or when it is to lead
        # the next group.
        self.wake = threading.Lock()
        self.wake.acquire()


class GroupCommit:
    """Writes that arrive together commit together.

    A heartbeat batch is a few rows, and on its own its transaction (begin,
    commit, the write-ahead log) costs more than the rows (see
    bench/ingest.py). Here the request threads of one process queue their
    writes; the first to find no writer at work becomes the writer, runs
    every write queued so far in one transaction, commits, and wakes the
    threads of that group, then the first thread queued since, which leads
    the next group. Each caller still returns only once its own write is
    committed, or raises what its write raised: if any write of a group
    fails, the group is rolled back and each of its writes runs again in a
    transaction of its own, so one bad batch never costs another.

    A thread hands its database connection back before it waits (to the
    pool on PostgreSQL): the writer may need one, and on PostgreSQL's
    bounded pool, waiters that each held one from earlier in their request
    (a token looked up) could hold them all, the writer would wait for a
    connection, and they for the writer, until the pool's timeout failed
    the whole group. And only the threads with something to do are woken
    (a lock per write), not every waiter on each commit.

    Writes must use only the database (no thread-local state of their
    caller): they may run on another request's thread. ``retry``: which
    errors of a write alone are worth one more transaction (a transient
    conflict the next transaction will not meet)."""

    def __init__(self, max_group: int = 64, retry=lambda exc: False):
        self.max_group = max_group
        self.retry = retry
        self.lock = threading.Lock()
        self.queue: list[_Job] = []
        self.writing = False  # a thread leads a group, or is woken to
        self.groups = 0  # transactions committed, for the tests and benchmarks
        self.writes = 0

    def run(self, write, *, using: str | None = None) -> None:
        job = _Job(write)
        with self.lock:
            self.queue.append(job)
            lead, self.writing = not self.writing, True
        if not lead:
            connection = connections[using or DEFAULT_DB_ALIAS]
            if not connection.in_atomic_block:
                connection.close()  # see the class's docstring
            job.wake.acquire()
        if not job.done:  # no writer was at work, or this one was handed the lead
            self._lead(job, using)
        if job.error is not None:
            raise job.error

    def _lead(self, job: _Job, using) -> None:
        """Commit the queued writes (``job``'s first among them), wake their
        threads, and hand the lead to the next queued one."""
        with self.lock:
            group, self.queue = self.queue[: self.max_group], self.queue[self.max_group :]
        try:
            self._commit(group, using)
        finally:
            for j in group:
                if not j.done:  # interrupted before it was committed
                    j.error, j.done = NotStored("The batch was not stored."), True
            with self.lock:
                following = self.queue[0] if self.queue else None
                self.writing = following is not None
            for j in group:
                if j is not job:
                    j.wake.release()
            if following is not None:
                following.wake.release()

    def _commit(self, group: list[_Job], using) -> None:
        opened = False
        try:
            with transaction.atomic(using=using):
                opened = True
                for job in group:
                    job.write()
        except Exception as exc:
            failed = exc
        else:
            self.groups += 1
            self.writes += len(group)
            for job in group:
                job.done = True
            return
        if not opened:
            # No transaction to be had (the database is unreachable, no
            # connection came within the pool's timeout): each write alone
            # would wait as long again, one after the other.
            for job in group:
                job.error, job.done = failed, True
            return
        if len(group) == 1:
            if self.retry(failed):
                self._alone(group[0], using, retries=0)
            else:
                group[0].error, group[0].done = failed, True
            return
        for job in group:  # one of them failed: each on its own
            self._alone(job, using, retries=1)

    def _alone(self, job: _Job, using, retries: int) -> None:
        while True:
            try:
                with transaction.atomic(using=using):
                    job.write()
            except Exception as exc:
                if retries and self.retry(exc):
                    retries -= 1
                    continue
                job.error = exc
            else:
                self.groups += 1
                self.writes += 1
            break
        job.done = True


# A write that met a partition being attached is retried (partitions.py).
_heartbeat_commits = GroupCommit(retry=partitions.moved_under_insert)


def parse_facts(facts) -> dict:
    """The node's CUDA driver version and disk space as the dashboard stores
    them (a version of ``None`` is stored as ""); ``IngestError`` names the
    first value it refuses."""
    if not isinstance(facts, dict):
        raise IngestError("facts must be an object.")
    cuda = facts.get("cuda_version")
    if cuda is not None and (not isinstance(cuda, str) or not CUDA_VERSION.fullmatch(cuda)):
        raise IngestError('facts.cuda_version must be a version such as "12.4", or null.')
    free, total = facts.get("disk_free_gb"), facts.get("disk_total_gb")
    if (free is None) != (total is None):
        raise IngestError("facts.disk_free_gb and facts.disk_total_gb come together, or neither.")
    if total is not None:
        total = _int(total, "disk_total_gb", 0, MAX_DISK_GB, "facts.")
        free = _int(free, "disk_free_gb", 0, total, "facts.")
    return {"cuda_version": cuda or "", "disk_free_gb": free, "disk_total_gb": total}


def _store(rows: list[tuple], node_id: int, token_id: int | None, token_used_at=None) -> None:
    """One multi-row insert for the batch (skipping instants already stored,
    and everything when ``token_id`` no longer acts for the node) and, when
    due, the token's last-used time (about once a minute per agent). The
    node row is not touched: its last heartbeat is read from the samples
    (``queries.last_heartbeat``), and the node row is the marketplace's
    hottest, which every agent post would otherwise rewrite (at 400,000
    agents posting every 15 s, 27,000 updates a second).

    Plain SQL rather than ``bulk_create``: the ORM spent more time preparing
    these few rows than the database spent storing them. The statements
    are built from the models' own table and column names."""
    connection = connections[router.db_for_write(Heartbeat)]
    adapt = connection.ops.adapt_datetimefield_value
    insert, owner, used = _statements(connection, len(rows))
    params = [v for r in rows for v in (r[0], adapt(r[1]), *r[2:])]
    with connection.cursor() as cursor:
        cursor.execute(insert, [*params, token_id, token_id, node_id])
        if cursor.rowcount < len(rows) and token_id is not None:
            # Fewer rows than sent: resent samples, or a revoked token.
            cursor.execute(owner, [token_id, node_id])
            if cursor.fetchone() is None:
                raise TokenRevoked("This agent token was revoked.")
        if token_used_at is not None and token_id is not None:
            cursor.execute(used, [adapt(token_used_at), token_id])


_sql: dict[tuple[str, int], tuple[str, str, str]] = {}
# The constraint a resent sample conflicts with: (node, at, epoch).
ONCE_PER_INSTANT = next(c for c in Heartbeat._meta.constraints if c.name == "heartbeat_once_per_instant")


def _statements(connection, n: int) -> tuple[str, str, str]:
    """The insert of ``n`` samples, the token check and the token touch, per
    database vendor and batch size (a few sizes recur: the agents' own)."""
    key = (connection.vendor, n)
    if key not in _sql:
        if len(_sql) > 64:
            _sql.clear()
        q = connection.ops.quote_name
        hb, token = Heartbeat._meta, AgentToken._meta
        columns = [hb.get_field(name).column for name in ("node", "at", "epoch", *(f[0] for f in SAMPLE_FIELDS))]
        row = f"({', '.join(['%s'] * len(columns))})"
        token_table = q(token.db_table)
        token_pk, token_node = q(token.pk.column), q(token.get_field("node").column)
        # ``%s IS NULL``: no token to check (a trusted caller).
        insert = (
            f"INSERT INTO {q(hb.db_table)} ({', '.join(q(c) for c in columns)}) "
            f"SELECT * FROM (VALUES {', '.join([row] * n)}) AS v "
            f"WHERE %s IS NULL OR EXISTS (SELECT 1 FROM {token_table} "
            f"WHERE {token_pk} = %s AND {token_node} = %s) "
            f"ON CONFLICT ({', '.join(q(hb.get_field(f).column) for f in ONCE_PER_INSTANT.fields)}) DO NOTHING"
        )
        owner = f"SELECT 1 FROM {token_table} WHERE {token_pk} = %s AND {token_node} = %s"
        used = f"UPDATE {token_table} SET {q(token.get_field('last_used_at').column)} = %s WHERE {token_pk} = %s"
        _sql[key] = (insert, owner, used)
    return _sql[key]


def register_key(checker: CheckerNode, public_key: str) -> None:
    """Trust on first use: the token proves who the agent is; the key it
    registers then signs every report. A different key is refused."""
    if not isinstance(public_key, str) or len(public_key) != 64:
        raise IngestError("public_key must be 64 hex characters (Ed25519).")
    try:
        bytes.fromhex(public_key)
    except ValueError:
        raise IngestError("public_key must be hex.") from None
    with transaction.atomic():
        checker = CheckerNode.objects.select_for_update().get(pk=checker.pk)
        if checker.public_key and checker.public_key != public_key:
            raise Conflict("This checker already has a different key; ask its operator to reset it.")
        if not checker.public_key:
            checker.public_key = public_key
            checker.save(update_fields=["public_key"])
            record_key(checker)


MAX_REPORTS = 1_000
# A report's measured download speed (download_mbps): a terabit at most.
MAX_MBPS = 1_000_000


@dataclass
class _Report:
    """A report that passed every check that needs no database: its shape,
    its challenge's shape, its signature."""

    epoch: int
    node_id: int
    fields: dict  # the CheckerReport columns measured and signed
    challenge: dict | None
    digest: str
    signature: str
    reason: str


class _Recorded:
    """What the database already holds about a set of reports, read in one
    query per kind (not per report), and the judgement of each against it.
    Reports judged new are remembered, so a batch that repeats an assignment
    or a seed is judged as if the first had been stored."""

    def __init__(self, checker: CheckerNode, reports: list[_Report]):
        epochs_named = {r.epoch for r in reports}
        nodes_named = {r.node_id for r in reports}
        seeds = [r.challenge["seed"] for r in reports if r.challenge]
        self.checker = checker
        self.current = epochs.current_number()
        self.closed = set(EpochConsensus.objects.filter(epoch__in=epochs_named).values_list("epoch", flat=True))
        self.assigned = set(
            Assignment.objects.filter(checker=checker, epoch__in=epochs_named, node_id__in=nodes_named).values_list(
                "epoch", "node_id"
            )
        )
        self.stored = {
            (row.epoch, row.node_id): row
            for row in CheckerReport.objects.filter(
                checker=checker, epoch__in=epochs_named, node_id__in=nodes_named
            ).only("id", "epoch", "node_id", "checker_id", "payload_hash")
        }
        self.seeds = set(ChallengeResult.objects.filter(seed__in=seeds).values_list("seed", flat=True))

    def judge(self, r: _Report) -> CheckerReport | None:
        """The stored report when this one is a resend of it (unchanged), None
        when it is new; IngestError (Conflict) when it may not be stored."""
        if r.epoch > self.current:
            raise IngestError(f"Epoch {r.epoch} has not started (current: {self.current}).")
        if r.epoch in self.closed:
            raise Conflict(f"Epoch {r.epoch} is closed: its consensus is already computed.")
        if (r.epoch, r.node_id) not in self.assigned:
            raise IngestError(f"This checker is not assigned to node {r.node_id} in epoch {r.epoch}.")
        # A resend is recognised before the seed is looked at: its seed is
        # the one stored with it.
        existing = self.stored.get((r.epoch, r.node_id))
        if existing is not None:
            if existing.payload_hash == r.digest:
                return existing
            raise Conflict("A different report for this assignment was already submitted.")
        if r.challenge and r.challenge["seed"] in self.seeds:
            raise IngestError("This challenge's seed was already reported: seeds are fresh per challenge.")
        return None

    def will_store(self, r: _Report, row: CheckerReport) -> None:
        self.stored[(r.epoch, r.node_id)] = row
        if r.challenge:
            self.seeds.add(r.challenge["seed"])


def _row(checker: CheckerNode, r: _Report) -> CheckerReport:
    return CheckerReport(
        epoch=r.epoch, node_id=r.node_id, checker=checker, payload_hash=r.digest, signature=r.signature, **r.fields
    )


def _log_reason(checker: CheckerNode, r: _Report) -> None:
    if r.reason:
        log.info(
            "checker %s, node %s, epoch %s: %s",
            checker.pk,
            r.node_id,
            r.epoch,
            r.reason.encode("unicode_escape").decode(),
        )


def submit_report(checker: CheckerNode, payload) -> tuple[CheckerReport, bool]:
    """Store one signed report; returns (report, created). Resending the same
    report changes nothing; a different one for the same assignment is a conflict.
    A new report commits with its hint to the overview, checker and node pages."""
    r = _parse_report(checker, payload)
    challenge = challenge_reports.build(r.challenge) if r.challenge else None
    try:
        with transaction.atomic():
            existing = _Recorded(checker, [r]).judge(r)
            if existing is not None:
                return existing, False
            row = _row(checker, r)
            row.save(force_insert=True)
            if challenge is not None:
                challenge_reports.attach(challenge, row).save(force_insert=True)
            live.report_arrived(row.node_id, checker.pk)
    except IntegrityError:  # the same report raced itself
        row = CheckerReport.objects.get(epoch=r.epoch, node_id=r.node_id, checker=checker)
        if row.payload_hash != r.digest:
            raise Conflict("A different report for this assignment was already submitted.") from None
        return row, False
    _log_reason(checker, r)
    return row, True


def submit_reports(checker: CheckerNode, reports) -> list[dict]:
    """Several signed reports (a checker's whole epoch), each judged exactly
    as ``submit_report`` would: one result per report, ``created`` or
    ``unchanged``, or the refusal with its status and message. A malformed
    batch is refused whole and writes nothing.

    The checks that need no database run first, report by report; what the
    database holds about all of them is then read in a few queries, and the
    new reports are written in one transaction with their pages' live hint.
    Per report, that was eight queries and a transaction of its own: a busy
    network's reports arrived after their epoch closed."""
    if not isinstance(reports, list) or not reports:
        raise errors.Refused('Send {"reports": [...]} with at least one report.')
    if len(reports) > MAX_REPORTS:
        raise errors.Refused(f"At most {MAX_REPORTS} reports per batch.")
    results: list[dict | None] = [None] * len(reports)
    parsed: list[tuple[int, _Report]] = []
    for i, payload in enumerate(reports):
        try:
            parsed.append((i, _parse_report(checker, payload)))
        except IngestError as exc:
            results[i] = {"index": i, "status": exc.status, "detail": str(exc)}
    challenges = {i: challenge_reports.build(r.challenge) for i, r in parsed if r.challenge}
    try:
        with transaction.atomic():
            recorded = _Recorded(checker, [r for _, r in parsed])
            new: list[tuple[int, _Report, CheckerReport]] = []
            for i, r in parsed:
                try:
                    existing = recorded.judge(r)
                except IngestError as exc:
                    results[i] = {"index": i, "status": exc.status, "detail": str(exc)}
                    continue
                if existing is not None:
                    results[i] = _result(i, existing, created=False)
                    continue
                row = _row(checker, r)
                recorded.will_store(r, row)
                new.append((i, r, row))
            CheckerReport.objects.bulk_create([row for _, _, row in new])
            ChallengeResult.objects.bulk_create(
                [challenge_reports.attach(challenges[i], row) for i, _, row in new if i in challenges]
            )
            live.reports_arrived([row.node_id for _, _, row in new], checker.pk)
    except IntegrityError:
        # Another request stored some of these meanwhile (a resend that raced
        # the first): judged one by one then, each against what is stored.
        return _submit_one_by_one(checker, reports)
    for i, r, row in new:
        results[i] = _result(i, row, created=True)
        _log_reason(checker, r)
    return results


def _result(i: int, row: CheckerReport, created: bool) -> dict:
    return {"index": i, "status": 201 if created else 200, "node": row.node_id, "epoch": row.epoch, "created": created}


def _submit_one_by_one(checker: CheckerNode, reports: list) -> list[dict]:
    results = []
    for i, payload in enumerate(reports):
        try:
            row, created = submit_report(checker, payload)
        except IngestError as exc:
            results.append({"index": i, "status": exc.status, "detail": str(exc)})
        else:
            results.append(_result(i, row, created))
    return results


def _parse_report(checker: CheckerNode, payload) -> _Report:
    """Everything about a report that needs no database, or IngestError."""
    if not isinstance(payload, dict):
        raise IngestError("Send a JSON object.")
    epoch = _int(payload.get("epoch"), "epoch", 0, 10**12)
    node_id = _int(payload.get("node"), "node", 1, 2**62)
    report = {
        "epoch": epoch,
        "node": node_id,
        "probes": _int(payload.get("probes"), "probes", 1, 100_000),
        "uptime_ppm": _int(payload.get("uptime_ppm"), "uptime_ppm", 0, 1_000_000),
        "task_ppm": _int(payload.get("task_ppm"), "task_ppm", 0, 1_000_000),
        "latency_ms": None
        if payload.get("latency_ms") is None
        else _int(payload.get("latency_ms"), "latency_ms", 0, 600_000),
        "spec_ok": payload.get("spec_ok"),
        "gpu_name_seen": payload.get("gpu_name_seen", ""),
        "gpu_count_seen": _int(payload.get("gpu_count_seen", 0), "gpu_count_seen", 0, 1024),
        # Only for a rented node with a workload to check; signed when present
        # (see signing: reports without it verify as they always did).
        "workload_ppm": None
        if payload.get("workload_ppm") is None
        else _int(payload.get("workload_ppm"), "workload_ppm", 0, 1_000_000),
        # The compute challenge the checker ran (challenge_reports); signed when present.
        "challenge": None,
        # The checker's timed download from the node, in Mbps; signed when present.
        "download_mbps": None
        if payload.get("download_mbps") is None
        else _int(payload.get("download_mbps"), "download_mbps", 0, MAX_MBPS),
    }
    if payload.get("challenge") is not None:
        try:
            report["challenge"] = challenge_reports.parse(payload["challenge"], epoch, node_id, checker.pk)
        except challenge_reports.Malformed as exc:
            raise IngestError(str(exc)) from None
    if report["spec_ok"] is not None and not isinstance(report["spec_ok"], bool):
        raise IngestError("spec_ok must be true, false or null (no probe answered).")
    if not isinstance(report["gpu_name_seen"], str) or len(report["gpu_name_seen"]) > 80:
        raise IngestError("gpu_name_seen must be a string of at most 80 characters.")
    # Why the checker's probes failed (its agent says so): not signed, not
    # judged, only logged for the node's operator.
    reason = payload.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 200:
        raise IngestError("reason must be a string of at most 200 characters.")
    signature = payload.get("signature")
    if not checker.public_key:
        raise IngestError("Register the checker's public key first (POST /api/agent/key/).")
    if not isinstance(signature, str) or not signing.verify(checker.public_key, report, signature):
        raise IngestError("The signature does not match the report.")
    return _Report(
        epoch=epoch,
        node_id=node_id,
        fields={k: v for k, v in report.items() if k not in {"epoch", "node", "challenge"}},
        challenge=report["challenge"],
        digest=signing.payload_hash(report),
        signature=signature,
        reason=reason,
    )

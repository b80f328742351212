"""Heartbeats partitioned by epoch on PostgreSQL (apps.monitoring.partitions):
samples land in their span's partition (or the DEFAULT one), retention drops
a span whole once it is past the window and settled, and the migration
converts the table both ways. Elsewhere the table stays plain, and what is
not about partitions runs on both engines."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from rest_framework.test import APIClient

from apps.monitoring import consensus, partitions, retention
from apps.monitoring.models import Heartbeat

from ..factories import make_node

TABLE = Heartbeat._meta.db_table


def postgres_only(test):
    test = pytest.mark.skipif(connection.vendor != "postgresql", reason="table partitioning is PostgreSQL's")(test)
    return pytest.mark.postgres(test)


def beats(node, epochs, per_epoch=2):
    now = timezone.now()
    Heartbeat.objects.bulk_create(
        Heartbeat(
            node=node,
            at=now - timedelta(minutes=e, seconds=i),
            epoch=e,
            gpu_util=50,
            mem_used_mb=1,
            mem_total_mb=2,
            temperature_c=60,
            power_w=300,
        )
        for e in epochs
        for i in range(per_epoch)
    )
    if connection.vendor == "postgresql":
        # Run the deferred foreign-key checks now: a table with checks still
        # pending in the transaction cannot be detached or dropped.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def where(epoch) -> set[str]:
    """The partitions holding ``epoch``'s samples."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT tableoid::regclass::text FROM {TABLE} WHERE epoch = %s", [epoch])
        return {row[0] for row in cursor.fetchall()}


def where_tables() -> set[str]:
    """The table's partitions, the DEFAULT one among them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [TABLE],
        )
        return {row[0] for row in cursor.fetchall()}


def held():
    return sorted(set(Heartbeat.objects.values_list("epoch", flat=True)))


@postgres_only
def test_the_table_is_partitioned_by_epoch_with_a_default(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_partkeydef(%s::regclass)", [TABLE])
        assert cursor.fetchone()[0] == "RANGE (epoch)"
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('p', 'u') ORDER BY conname",
            [TABLE],
        )
        assert cursor.fetchall() == [
            ("heartbeat_once_per_instant", "UNIQUE (node_id, at, epoch)"),
            (f"{TABLE}_pkey", "PRIMARY KEY (id, epoch)"),
        ]
    assert partitions.enabled()
    assert partitions.default_name() in where_tables()


@postgres_only
def test_samples_land_in_their_spans_partition_or_the_default(genesis, settings):
    settings.HEARTBEAT_PARTITION_EPOCHS = 4
    node, _token = make_node()
    assert partitions.ensure(5) == [partitions.name(4, 8), partitions.name(8, 12)]
    assert partitions.ensure(5) == [] and partitions.ensure(9, ahead=0) == []  # idempotent
    beats(node, [4, 7, 8, 11, 12, 30])
    assert where(4) == where(7) == {partitions.name(4, 8)}
    assert where(8) == where(11) == {partitions.name(8, 12)}
    assert where(12) == where(30) == {partitions.default_name()}
    # A span created later takes its samples over from the default.
    assert partitions.ensure(13, ahead=0) == [partitions.name(12, 16)]
    assert where(12) == {partitions.name(12, 16)} and where(30) == {partitions.default_name()}
    assert Heartbeat.objects.count() == 12
    # A new span never overlaps one that exists (the span was changed).
    settings.HEARTBEAT_PARTITION_EPOCHS = 6
    assert partitions.ensure(14, ahead=0) == [partitions.name(16, 18)]
    ids = list(Heartbeat.objects.values_list("id", flat=True))
    assert len(set(ids)) == len(ids)  # one sequence across partitions


@postgres_only
def test_pruning_drops_whole_spans_past_the_window_and_settled(genesis, settings):
    """Spans of 4, the window's cut at 14: [4, 8) is past it and settled:
    dropped whole. [8, 12) is past it but epoch 9 is not settled: kept,
    its settled epoch 8 deleted as before. [12, 16) reaches into the
    window: kept whole, its settled past epochs too (they go with the
    span). The DEFAULT partition's settled past epochs are deleted as
    before, its unsettled ones kept."""
    settings.HEARTBEAT_PARTITION_EPOCHS = 4
    settings.TELEMETRY_RETENTION_EPOCHS = 10
    node, _token = make_node()
    partitions.ensure(4, ahead=2)
    beats(node, [1, 2, 4, 5, 8, 9, 12, 13, 14])
    assert where(1) == where(2) == {partitions.default_name()}
    for e in (1, 4, 5, 8, 12, 13, 14):
        consensus.finalize(e)
    removed = retention.prune(current_epoch=24)
    assert (removed["heartbeat_partitions"], removed["heartbeats"]) == (1, 2 + 2)  # epochs 1 and 8 deleted
    assert held() == [2, 9, 12, 13, 14]
    assert {p[0] for p in partitions.partitions()} == {partitions.name(8, 12), partitions.name(12, 16)}


@postgres_only
def test_a_span_inside_the_window_or_unsettled_is_kept_whole(genesis, settings):
    settings.HEARTBEAT_PARTITION_EPOCHS = 4
    settings.TELEMETRY_RETENTION_EPOCHS = 5
    node, _token = make_node()
    partitions.ensure(0, ahead=2)
    beats(node, [0, 2, 5, 6, 9])
    for e in (0, 5, 6, 9):
        consensus.finalize(e)  # epoch 2 is not settled (the scheduler was down)
    removed = retention.prune(current_epoch=12)  # cut 7: [4, 8) reaches into it
    assert removed == {
        "heartbeats": 2,  # epoch 0's, from the span epoch 2 holds back
        "heartbeat_partitions": 0,
        "reports": 0,
        "assignments": 0,
        "assignment_rounds": 0,
    }
    assert held() == [2, 5, 6, 9]
    consensus.finalize(2)  # settled late: the span goes whole at the next prune
    assert retention.prune(current_epoch=12)["heartbeat_partitions"] == 1
    assert held() == [5, 6, 9]
    assert retention.prune(current_epoch=13)["heartbeat_partitions"] == 1  # cut 8: [4, 8) goes
    assert held() == [9]


@postgres_only
def test_a_drop_kept_waiting_for_the_tables_lock_gives_up_changing_nothing(genesis, settings):
    """A long read of the table holds a lock the detach must wait for: the
    prune leaves the partition to the next one rather than queue every
    insert behind it."""
    import psycopg

    settings.HEARTBEAT_PARTITION_EPOCHS = 4
    partitions.ensure(0, ahead=0)
    # The database this test's connection actually uses (not the settings,
    # which other tests' servers may point elsewhere).
    connection.ensure_connection()
    db = connection.connection.info
    with psycopg.connect(
        dbname=db.dbname, user=db.user, host=db.host, port=db.port, options="-c lock_timeout=5000"
    ) as other:
        # What a read takes on the table, its transaction left open.
        other.execute(f"LOCK TABLE ONLY {TABLE} IN ACCESS SHARE MODE")
        assert not partitions.drop(partitions.name(0, 4), 0, 4, lock_timeout_ms=200)
    assert partitions.name(0, 4) in where_tables()
    assert partitions.drop(partitions.name(0, 4), 0, 4)
    assert partitions.name(0, 4) not in where_tables()


def test_the_scheduler_creates_the_current_span_and_the_next(genesis, settings):
    from apps.core import epochs
    from apps.settlement import services

    settings.HEARTBEAT_PARTITION_EPOCHS = 3
    services.fix_current_round()
    if connection.vendor != "postgresql":
        assert not partitions.enabled()  # a plain table: nothing to create
        return
    lo = epochs.current_number() // 3 * 3
    assert [(a, b) for _, a, b in partitions.partitions()][-2:] == [(lo, lo + 3), (lo + 3, lo + 6)]


def test_a_resent_batch_adds_nothing_in_a_partition(genesis, settings):
    """The ingest's insert skips a stored instant through the (node, at,
    epoch) constraint, on a plain table and in a partition alike."""
    node, token = make_node()
    partitions.ensure_current()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Agent {token}")
    now = timezone.now()
    batch = [
        {
            "at": (now - timedelta(seconds=s)).isoformat(),
            "gpu_util": s,
            "mem_used_mb": 1,
            "mem_total_mb": 2,
            "temperature_c": 50,
            "power_w": 300,
            "workloads": 0,
        }
        for s in (10, 5)
    ]
    for _ in range(3):
        assert client.post("/api/agent/heartbeats/", {"samples": batch}, format="json").status_code == 201
    assert sorted(Heartbeat.objects.filter(node=node).values_list("gpu_util", flat=True)) == [5, 10]
    if connection.vendor == "postgresql":
        (epoch,) = set(Heartbeat.objects.values_list("epoch", flat=True))
        assert where(epoch) != {partitions.default_name()}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_batch_routed_to_the_default_as_its_partition_is_attached_is_stored_in_it(genesis, settings):
    """An agent's batch for a span with no partition yet goes to the DEFAULT
    partition; if the scheduler attaches that span's partition meanwhile,
    the insert (kept waiting by the lock on the DEFAULT partition) no longer
    fits there. It is written again, into the new partition: the agent is
    told "stored" and the sample is."""
    import threading

    from apps.core import epochs
    from apps.core.models import AgentToken
    from apps.monitoring import ingest

    node, _token = make_node()
    epoch = epochs.current_number()
    for part, lo, hi in partitions.partitions():  # left by earlier tests' commits
        if lo <= epoch < hi:
            assert partitions.drop(part, lo, hi)
    lo, hi = partitions.span_of(epoch)
    token_id = AgentToken.objects.get(node=node).pk
    sample = {k: 1 for k in ("gpu_util", "mem_used_mb", "mem_total_mb", "temperature_c", "power_w", "workloads")}
    batch = ingest.parse_heartbeats(node.pk, {"samples": [dict(sample, at=timezone.now().isoformat())]})
    at_attach, go, outcome = threading.Event(), threading.Event(), []

    def pause_before_attach(execute, sql, params, many, context):
        if "ATTACH PARTITION" in sql:
            at_attach.set()
            assert go.wait(10)
        return execute(sql, params, many, context)

    def scheduler():
        try:
            with connection.execute_wrapper(pause_before_attach):
                partitions.ensure(epoch, ahead=0)
        finally:
            connection.close()

    def agent():
        try:
            ingest.store_heartbeats(batch, token_id=token_id)
            outcome.append("stored")
        except Exception as exc:
            outcome.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=scheduler), threading.Thread(target=agent)]
    threads[0].start()
    assert at_attach.wait(10)
    threads[1].start()
    with connection.cursor() as cursor:  # until the insert waits for the DEFAULT partition's lock
        for _ in range(500):
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                break
            threading.Event().wait(0.02)
    go.set()
    for t in threads:
        t.join(10)
    assert outcome == ["stored"]
    assert Heartbeat.objects.filter(node=node).count() == 1
    assert where(batch.rows[0][2]) == {partitions.name(lo, hi)}


@pytest.mark.django_db(transaction=True)
def test_the_migration_runs_backward_and_forward_keeping_rows_and_ids(genesis, settings):
    settings.HEARTBEAT_PARTITION_EPOCHS = 10
    node, _token = make_node()
    beats(node, [3, 14, 15])
    before = sorted(Heartbeat.objects.values_list("id", "node_id", "at", "epoch"))
    last = max(r[0] for r in before)

    def migrate(target):
        executor = MigrationExecutor(connection)
        executor.migrate([("monitoring", target)])

    def relkind():
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [TABLE])
            return cursor.fetchone()[0]

    try:
        migrate("0013_report_latency_help")
        assert relkind() in (None, "r")
        assert sorted(Heartbeat.objects.values_list("id", "node_id", "at", "epoch")) == before
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {TABLE} (node_id, at, epoch, gpu_util, mem_used_mb, mem_total_mb, temperature_c, "
                "power_w, workloads) VALUES (%s, %s, 27, 1, 1, 1, 1, 1, 0)",
                [node.pk, timezone.now()],
            )
        middle = Heartbeat.objects.get(epoch=27).pk
        assert middle > last
    finally:
        migrate("0014_heartbeat_partitioned_by_epoch")
    assert relkind() in (None, "p")
    assert Heartbeat.objects.count() == len(before) + 1
    assert sorted(Heartbeat.objects.filter(id__lte=last).values_list("id", "node_id", "at", "epoch")) == before
    if connection.vendor == "postgresql":
        assert {p[1:] for p in partitions.partitions()} == {(0, 10), (10, 20), (20, 30)}
        assert where(27) == {partitions.name(20, 30)}
    beats(node, [28], per_epoch=1)
    assert Heartbeat.objects.get(epoch=28).pk > middle
    if connection.vendor == "postgresql":
        # The rows go with the test; the partitions would stay for the next.
        Heartbeat.objects.all().delete()
        for part, lo, hi in partitions.partitions():
            assert partitions.drop(part, lo, hi)

"""Heartbeats partitioned by epoch on PostgreSQL (apps.monitoring.partitions).

Everywhere: the once-per-instant constraint takes ``epoch`` as its third
column (a unique index of a table partitioned by epoch must include it; an
instant always falls in the same epoch, so it still means one sample per
node and instant).

On PostgreSQL the table is rebuilt as a table partitioned by RANGE of
``epoch``: one partition per ``HEARTBEAT_PARTITION_EPOCHS`` span that holds
rows, and a DEFAULT partition; the rows moved over; primary key (id,
epoch); the constraint, the foreign key to the node and the indexes as they
were; ids go on from the same value (PostgreSQL 15 has no identity column
on a partitioned table: a sequence owned by the column, as ``serial``
makes). Backwards rebuilds the plain table, its identity going on from the
same value. Each way holds the table's lock while the rows are copied:
minutes for days of samples of thousands of nodes (docs/deploy.md)."""

from django.conf import settings
from django.db import migrations, models

TABLE = "monitoring_heartbeat"
UNIQUE = "heartbeat_once_per_instant"


def _scalar(cursor, sql, params=()):
    cursor.execute(sql, params)
    row = cursor.fetchone()
    return row[0] if row else None


def _saved(cursor):
    """What the rebuild must carry over: the next id, the foreign keys'
    definitions, and the indexes that back no constraint."""
    seq = _scalar(cursor, "SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
    next_id = 1
    if seq:
        cursor.execute(f"SELECT last_value, is_called FROM {seq}")
        last, called = cursor.fetchone()
        next_id = last + 1 if called else last
    next_id = max(next_id, (_scalar(cursor, f"SELECT max(id) FROM {TABLE}") or 0) + 1)
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f' AND conparentid = 0 ORDER BY conname",
        [TABLE],
    )
    fks = cursor.fetchall()
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
        [TABLE],
    )
    indexes = [row[0] for row in cursor.fetchall()]
    return next_id, fks, indexes


def _restore(cursor, fks, indexes):
    for conname, definition in fks:
        cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{conname}" {definition}')
    for definition in indexes:
        cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    span = max(1, int(settings.HEARTBEAT_PARTITION_EPOCHS))
    with schema_editor.connection.cursor() as cursor:
        if _scalar(cursor, "SELECT relkind FROM pg_class WHERE oid = %s::regclass", [TABLE]) == "p":
            return
        next_id, fks, indexes = _saved(cursor)
        new = f"{TABLE}_partitioned"
        cursor.execute(f"CREATE TABLE {new} (LIKE {TABLE} INCLUDING CONSTRAINTS) PARTITION BY RANGE (epoch)")
        # A partition per span that holds rows (one index lookup each), and
        # the DEFAULT partition; the scheduler adds the current span's and
        # the next when it next runs (partitions.ensure).
        e = _scalar(cursor, f"SELECT min(epoch) FROM {TABLE}")
        while e is not None:
            lo = e // span * span
            hi = lo + span
            cursor.execute(f"CREATE TABLE {TABLE}_{lo}_{hi} PARTITION OF {new} FOR VALUES FROM ({lo}) TO ({hi})")
            e = _scalar(cursor, f"SELECT min(epoch) FROM {TABLE} WHERE epoch >= %s", [hi])
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {new} DEFAULT")
        cursor.execute(f"INSERT INTO {new} SELECT * FROM {TABLE}")
        cursor.execute(f"DROP TABLE {TABLE}")  # and its identity sequence
        cursor.execute(f"ALTER TABLE {new} RENAME TO {TABLE}")
        cursor.execute(f"CREATE SEQUENCE {TABLE}_id_seq OWNED BY {TABLE}.id")
        cursor.execute(f"SELECT setval('{TABLE}_id_seq', %s, false)", [next_id])
        cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('{TABLE}_id_seq')")
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, epoch)")
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {UNIQUE} UNIQUE (node_id, at, epoch)")
        _restore(cursor, fks, indexes)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if _scalar(cursor, "SELECT relkind FROM pg_class WHERE oid = %s::regclass", [TABLE]) != "p":
            return
        next_id, fks, indexes = _saved(cursor)
        new = f"{TABLE}_plain"
        cursor.execute(f"CREATE TABLE {new} (LIKE {TABLE} INCLUDING CONSTRAINTS)")
        cursor.execute(f"INSERT INTO {new} SELECT * FROM {TABLE}")
        cursor.execute(f"DROP TABLE {TABLE}")  # its partitions and sequence with it
        cursor.execute(f"ALTER TABLE {new} RENAME TO {TABLE}")
        cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), %s, false)", [next_id])
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id)")
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {UNIQUE} UNIQUE (node_id, at)")
        _restore(cursor, fks, indexes)


class _ElsewhereOnly:
    """The operation's schema change on databases other than PostgreSQL
    (where ``partition`` makes it); its state change everywhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class RemoveConstraintElsewhere(_ElsewhereOnly, migrations.RemoveConstraint):
    pass


class AddConstraintElsewhere(_ElsewhereOnly, migrations.AddConstraint):
    pass


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0013_report_latency_help"),
    ]

    operations = [
        RemoveConstraintElsewhere(model_name="heartbeat", name=UNIQUE),
        AddConstraintElsewhere(
            model_name="heartbeat",
            constraint=models.UniqueConstraint(fields=("node", "at", "epoch"), name=UNIQUE),
        ),
        migrations.RunPython(partition, unpartition),
    ]

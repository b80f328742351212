"""What every in-process benchmark needs before Django starts: a database of
its own. Never the project's, never a configured PostgreSQL: the data they
build would pollute a real database (a benchmark that measures PostgreSQL
drops and creates a database of its own, see ``bench.load.fresh_postgres``).
Then the bulk rows they fill it with: GPU nodes and delegations, written
with ``COPY`` when the database is PostgreSQL."""

import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@contextmanager
def temporary_sqlite(name: str, *, keep: bool = False):
    """Point Django at a fresh SQLite file in a temporary folder (yielded),
    with the in-memory channel layer; remove it afterwards unless ``keep``."""
    tmp = Path(tempfile.mkdtemp(prefix=f"aethir-bench-{name}-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aethir_web.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    try:
        yield tmp
    finally:
        if keep:
            print(f"database kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def insert_delegations(cursor, checker_ids: list[int], n: int, amount: int, stamp: str, tag: str = "d") -> None:
    """``n`` delegator accounts holding ``amount`` bonded, each with one
    delegation lot (bonded in epoch 0) to the checkers in turn, written with
    plain SQL (``COPY`` on PostgreSQL, seven times faster there than
    ``executemany``): a million through the ORM would take minutes. They
    stand in for delegation postings, so the hash chain of such a database
    does not verify; the caller accounts for the ATH they hold."""
    cursor.execute("SELECT COALESCE(MAX(id), 0) FROM core_account")
    first = cursor.fetchone()[0] + 1
    if cursor.db.vendor == "postgresql":
        _copy_delegations(cursor, checker_ids, n, amount, stamp, tag, first)
        return
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        cursor.executemany(
            "INSERT INTO core_account (address, kind, module, label, available, escrowed, collateral, bonded,"
            " unbonding, created_at) VALUES (%s, 'user', '', '', 0, 0, 0, %s, 0, %s)",
            [(f"ath1{tag}{i:038d}", amount, stamp) for i in range(start, stop)],
        )
        cursor.executemany(
            "INSERT INTO staking_delegation (delegator_id, checker_id, amount, start_epoch, accrued_scaled,"
            " created_at, updated_at) VALUES (%s, %s, %s, 0, '0', %s, %s)",
            [(first + i, checker_ids[i % len(checker_ids)], amount, stamp, stamp) for i in range(start, stop)],
        )


def _copy_delegations(cursor, checker_ids, n, amount, stamp, tag, first) -> None:
    """``insert_delegations`` on PostgreSQL: the accounts' ids are written
    (so each delegation names its own), then the id sequence moved past them."""
    raw = cursor.cursor  # psycopg's own cursor, for COPY
    with raw.copy(
        "COPY core_account (id, address, kind, module, label, available, escrowed, collateral, bonded,"
        " unbonding, created_at) FROM STDIN"
    ) as copy:
        for i in range(n):
            copy.write_row((first + i, f"ath1{tag}{i:038d}", "user", "", "", 0, 0, 0, amount, 0, stamp))
    cursor.execute("SELECT setval(pg_get_serial_sequence('core_account', 'id'), MAX(id)) FROM core_account")
    with raw.copy(
        "COPY staking_delegation (delegator_id, checker_id, amount, start_epoch, accrued_scaled, created_at,"
        " updated_at) FROM STDIN"
    ) as copy:
        for i in range(n):
            copy.write_row((first + i, checker_ids[i % len(checker_ids)], amount, 0, "0", stamp, stamp))


def insert_objects(model, objs: list, batch_size: int) -> None:
    """Insert unsaved ``objs`` of ``model`` as ``bulk_create`` does (their
    primary keys are not set): on PostgreSQL in one ``COPY``, in about two
    thirds of ``bulk_create``'s time (making the objects is most of the rest);
    elsewhere by ``bulk_create`` in batches of ``batch_size``."""
    from django.db import connection

    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=batch_size)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
            for obj in objs:
                copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields])


def random_nodes(rng, n: int, providers, *, name: str, prices: tuple[int, int, int], endpoint: str, **fields) -> list:
    """``n`` unsaved GPU nodes for ``bulk_create``, owned by ``providers`` in
    turn: each a random GPU model, size (mostly one GPU), region and hourly
    price (``rng.randrange(*prices)``) on the usual bench machine (32 vCPU,
    256 GB, 10 Gbit/s) at ``endpoint``, named ``name.format(i)``. Each of
    ``fields`` is a value, or a function of ``rng`` drawn for every node in
    the order given (after the draws above, so a seed gives the same nodes)."""
    from apps.core.models import GpuModel, GpuNode, Region

    models, regions = list(GpuModel.objects.all()), list(Region.objects.all())
    return [
        GpuNode(
            provider=providers[i % len(providers)],
            name=name.format(i),
            gpu_model=rng.choice(models),
            gpu_count=rng.choice((1, 1, 2, 4, 8)),
            vcpu=32,
            ram_gb=256,
            region=rng.choice(regions),
            bandwidth_mbps=10_000,
            price_per_gpu_hour=rng.randrange(*prices),
            endpoint=endpoint,
            **{field: value(rng) if callable(value) else value for field, value in fields.items()},
        )
        for i in range(n)
    ]

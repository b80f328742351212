"""What every in-process benchmark needs before Django starts: a database of
its own. Never the project's, never a configured PostgreSQL: these figures
are about SQLite, and the data they build would pollute a real database."""

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
    plain SQL: a million through the ORM would take minutes. They stand in
    for delegation postings, so the hash chain of such a database does not
    verify; the caller accounts for the ATH they hold."""
    cursor.execute("SELECT COALESCE(MAX(id), 0) FROM core_account")
    first = cursor.fetchone()[0] + 1
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

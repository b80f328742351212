"""SQLite connections are reused across requests, but never across a
transaction, nor after the database file was replaced."""

import pytest

from apps.core.sqlite_pooled.base import DatabaseWrapper


@pytest.fixture(autouse=True)
def own_files(django_db_blocker):
    # These tests open their own database files, not the test database.
    with django_db_blocker.unblock():
        yield


def wrapper(path, alias="pooled"):
    return DatabaseWrapper(
        {
            "ENGINE": "apps.core.sqlite_pooled", "NAME": str(path), "USER": "", "PASSWORD": "", "HOST": "", "PORT": "",
            "ATOMIC_REQUESTS": False, "AUTOCOMMIT": True, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False,
            "TIME_ZONE": None, "TEST": {},
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        },
        alias=alias,
    )


def test_a_closed_connection_serves_the_next_request(tmp_path):
    db = wrapper(tmp_path / "a.sqlite3")
    db.ensure_connection()
    raw = db.connection
    db.close()
    db.ensure_connection()
    assert db.connection is raw
    # Another wrapper (another request's thread) gets it too once it is free.
    db.close()
    other = wrapper(tmp_path / "a.sqlite3", alias="other")
    other.ensure_connection()
    assert other.connection is raw
    other.close()


def test_an_open_transaction_is_rolled_back_before_reuse(tmp_path):
    db = wrapper(tmp_path / "b.sqlite3")
    with db.cursor() as c:
        c.execute("CREATE TABLE t (x integer)")
    db.set_autocommit(False)
    with db.cursor() as c:
        c.execute("INSERT INTO t VALUES (1)")
    db.close()
    db.ensure_connection()
    assert not db.connection.in_transaction
    with db.cursor() as c:
        c.execute("SELECT count(*) FROM t")
        assert c.fetchone() == (0,)
    db.close()


def test_a_replaced_file_gets_new_connections(tmp_path):
    path = tmp_path / "c.sqlite3"
    db = wrapper(path)
    with db.cursor() as c:
        c.execute("CREATE TABLE old (x integer)")
    raw = db.connection
    db.close()
    for f in tmp_path.glob("c.sqlite3*"):
        f.unlink()
    db.ensure_connection()
    assert db.connection is not raw
    with db.cursor() as c:
        c.execute("SELECT count(*) FROM sqlite_master WHERE name = 'old'")
        assert c.fetchone() == (0,)
    db.close()

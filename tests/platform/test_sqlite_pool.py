"""SQLite connections are reused across requests, but never across a
transaction, nor after the database file was replaced; writers in one
process queue for the database instead of polling its lock."""

import threading
import time

import pytest

from apps.platform.sqlite_pooled.base import DatabaseWrapper


@pytest.fixture(autouse=True)
def own_files(django_db_blocker):
    # These tests open their own database files, not the test database.
    with django_db_blocker.unblock():
        yield


def wrapper(path, alias="pooled"):
    return DatabaseWrapper(
        {
            "ENGINE": "apps.platform.sqlite_pooled",
            "NAME": str(path),
            "USER": "",
            "PASSWORD": "",
            "HOST": "",
            "PORT": "",
            "ATOMIC_REQUESTS": False,
            "AUTOCOMMIT": True,
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "TIME_ZONE": None,
            "TEST": {},
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


def writer(path, alias, timeout=5):
    db = wrapper(path, alias=alias)
    db.settings_dict["OPTIONS"]["timeout"] = timeout
    return db


def test_transactions_queue_in_the_process(tmp_path):
    path = tmp_path / "d.sqlite3"
    setup = writer(path, "setup")
    with setup.cursor() as c:
        c.execute("CREATE TABLE t (x integer)")
    setup.close()
    held, events = threading.Event(), []

    def write(n, hold):
        db = writer(path, f"w{n}")
        db._start_transaction_under_autocommit()  # what transaction.atomic() does first
        events.append(f"begin {n}")
        with db.cursor() as c:
            c.execute("INSERT INTO t VALUES (%s)", [n])
        if hold:
            held.set()
            time.sleep(0.3)
        events.append(f"commit {n}")
        db.commit()
        db.close()

    first = threading.Thread(target=write, args=(1, True))
    first.start()
    assert held.wait(5)
    second = threading.Thread(target=write, args=(2, False))
    second.start()
    first.join(5)
    second.join(5)
    assert events == ["begin 1", "commit 1", "begin 2", "commit 2"]


def test_rollback_or_close_inside_a_transaction_frees_the_next_writer(tmp_path):
    path = tmp_path / "e.sqlite3"
    db = writer(path, "a", timeout=0.2)
    db._start_transaction_under_autocommit()
    db.rollback()
    db._start_transaction_under_autocommit()
    db.in_atomic_block = True  # closed mid-transaction, as after a lost connection
    db.close()
    other = writer(path, "b", timeout=0.2)
    other._start_transaction_under_autocommit()  # would time out if the lock had leaked
    other.rollback()
    other.close()

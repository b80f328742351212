"""SQLite with its connections reused across requests, and writers that
queue in the process instead of polling the database lock.

Under ASGI a request's synchronous code runs on one of the process's
request threads (``apps/platform/asgi_handler.py``), as many as there were
requests at once at the busiest moment, and Django closes a request's
connection when it ends (``CONN_MAX_AGE`` 0, so that a burst does not leave
a connection open per thread). For SQLite a new connection is expensive:
its first statement parses the whole schema (about 200 tables and indexes
here), which costs more than a typical request's queries. This backend
keeps the closed connections of a database file in a small process-wide
pool and hands them to the next request instead.

A connection only goes back to the pool outside any transaction, and one is
only taken from it while the file is still the one it was opened on (a test
database is deleted and recreated under the same name).

Transactions start with ``BEGIN IMMEDIATE`` (see settings), so only one runs
at a time per database anyway. When several request threads want one, SQLite
makes the losers sleep and retry with growing back-off, and under load they
sleep while the lock is already free again: lower throughput and long tail
latencies. Here they wait on a lock in the process first, which hands over
as soon as the holder commits; SQLite's own timeout still covers writers in
other processes.
"""

import os
import threading

from django.db.backends.sqlite3 import base
from django.db.utils import OperationalError

POOL_SIZE = 8


class _Pool:
    def __init__(self):
        self.lock = threading.Lock()
        self.idle: dict[str, tuple[tuple[int, int], list]] = {}

    @staticmethod
    def identity(path: str) -> tuple[int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def take(self, path: str):
        ident = self.identity(path)
        with self.lock:
            entry = self.idle.get(path)
            if entry is None:
                return None
            if entry[0] != ident:  # a different file now: drop what was kept for the old one
                stale = entry[1]
                del self.idle[path]
            else:
                return entry[1].pop() if entry[1] else None
        for conn in stale:
            conn.close()
        return None

    def give(self, path: str, conn) -> bool:
        ident = self.identity(path)
        if ident is None:
            return False
        with self.lock:
            entry = self.idle.get(path)
            if entry is None or entry[0] != ident:
                entry = self.idle[path] = (ident, [])
            if len(entry[1]) >= POOL_SIZE:
                return False
            entry[1].append(conn)
            return True

    def forget(self):
        """In a forked child: the parent's connections must never be used
        (nor closed) here, so they are just set aside."""
        self.lock = threading.Lock()
        _inherited.append(self.idle)
        self.idle = {}


class _WriterLocks:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_path: dict[str, threading.Lock] = {}

    def get(self, path: str) -> threading.Lock:
        with self.lock:
            return self.by_path.setdefault(path, threading.Lock())


_writers = _WriterLocks()
_pool = _Pool()
_inherited: list = []
os.register_at_fork(after_in_child=_pool.forget)


class DatabaseWrapper(base.DatabaseWrapper):
    _writer: threading.Lock | None = None

    def _pooled_path(self) -> str | None:
        name = str(self.settings_dict["NAME"])
        if self.is_in_memory_db() or name.startswith("file:"):
            return None
        return name

    def get_new_connection(self, conn_params):
        path = self._pooled_path()
        if path is not None:
            conn = _pool.take(path)
            if conn is not None:
                return conn
        return super().get_new_connection(conn_params)

    def _start_transaction_under_autocommit(self):
        self.ensure_connection()  # reads the transaction mode from the settings
        path = self._pooled_path()
        if path is not None and self.transaction_mode in {"IMMEDIATE", "EXCLUSIVE"} and self._writer is None:
            lock = _writers.get(path)
            if not lock.acquire(timeout=self.settings_dict["OPTIONS"].get("timeout", 5)):
                raise OperationalError("database is locked")
            self._writer = lock
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writer()
            raise

    def _release_writer(self):
        lock, self._writer = self._writer, None
        if lock is not None:
            lock.release()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release_writer()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_writer()

    def _close(self):
        self._release_writer()
        conn, path = self.connection, self._pooled_path()
        if conn is not None and path is not None and not self.in_atomic_block:
            try:
                if conn.in_transaction:
                    conn.rollback()
                reusable = not conn.in_transaction
            except base.Database.Error:
                reusable = False
            if reusable and _pool.give(path, conn):
                return None
        return super()._close()

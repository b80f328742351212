"""Rerun a transaction the database aborted for a conflict.

PostgreSQL may abort a transaction with a deadlock (SQLSTATE 40P01) or a
serialization failure (40001); SQLite gives up with "database is locked"
when another writer holds it past the busy timeout. Neither is the caller's
fault and both succeed when the whole transaction runs again, so the service
layer reruns it a bounded number of times instead of answering 500.

Only the outermost transaction can be rerun: once the database aborts it,
every savepoint inside it is gone too. :func:`run_atomic` therefore retries
only when it opens the transaction itself; inside someone else's atomic block
it runs once and leaves the retry to whoever owns the transaction.
"""

import functools
import logging
import random
import time

from django.db import OperationalError, transaction

log = logging.getLogger(__name__)

RETRYABLE_SQLSTATES = {"40001", "40P01"}
ATTEMPTS = 5


def is_retryable(exc: BaseException) -> bool:
    """A deadlock, a serialization failure or a locked SQLite database."""
    seen = exc
    for _ in range(4):  # Django wraps the driver's error; look a little way down
        if seen is None:
            break
        state = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if state in RETRYABLE_SQLSTATES:
            return True
        if "database is locked" in str(seen) or "deadlock detected" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def run_atomic(fn, *args, first=None, attempts: int = ATTEMPTS, using=None, **kwargs):
    """``fn(*args, **kwargs)`` in one transaction, rerun from the start (up to
    ``attempts`` times) when the database aborts it for a conflict. ``first``
    runs at the start of each try, before ``fn`` (taking the lock every
    transaction of its kind takes first)."""
    if transaction.get_connection(using).in_atomic_block:
        # Still all or nothing (a savepoint), but no rerun: the database
        # aborts the whole outer transaction, which only its owner can rerun.
        with transaction.atomic(using=using):
            if first is not None:
                first()
            return fn(*args, **kwargs)
    for attempt in range(1, attempts + 1):
        try:
            with transaction.atomic(using=using):
                if first is not None:
                    first()
                return fn(*args, **kwargs)
        except OperationalError as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            log.info(
                "Transaction conflict (%s); running %s again (try %d of %d)",
                exc,
                getattr(fn, "__qualname__", fn),
                attempt + 1,
                attempts,
            )
        # A short, growing, random pause so two colliding transactions do not
        # collide again in lockstep.
        time.sleep(random.uniform(0, 0.01 * 2**attempt))
    raise AssertionError("unreachable")


def retry_atomic(fn=None, *, first=None, attempts: int = ATTEMPTS):
    """Decorator form of :func:`run_atomic`."""

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            return run_atomic(func, *args, first=first, attempts=attempts, **kwargs)

        return wrapper

    return decorate(fn) if fn is not None else decorate

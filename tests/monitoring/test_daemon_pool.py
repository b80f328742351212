"""The engine's thread pool: calls run and report like a standard pool's,
and a call still in flight never keeps a stopping agent's process alive."""

import subprocess
import sys
import threading
import time

import pytest

from apps.monitoring.agents.daemon_pool import DaemonThreadPool


def test_calls_return_their_results_and_exceptions():
    pool = DaemonThreadPool(2)
    assert pool.submit(pow, 2, 10).result(timeout=5) == 1024
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(timeout=5)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(pow, 2, 2)


def test_no_more_threads_than_asked_and_queued_calls_wait_their_turn():
    pool = DaemonThreadPool(2)
    gate = threading.Event()
    running = []
    futures = [pool.submit(lambda i=i: (running.append(i), gate.wait(5), i)[2]) for i in range(5)]
    time.sleep(0.2)
    assert len(running) == 2  # two threads, three calls queued
    gate.set()
    assert [f.result(timeout=5) for f in futures] == [0, 1, 2, 3, 4]
    pool.shutdown()


def test_shutdown_cancels_what_has_not_started():
    pool = DaemonThreadPool(1)
    gate = threading.Event()
    first = pool.submit(gate.wait, 5)
    time.sleep(0.1)
    later = pool.submit(pow, 2, 2)
    pool.shutdown(wait=False, cancel_futures=True)
    assert later.cancelled()
    gate.set()
    assert first.result(timeout=5) is True


def test_a_call_in_flight_does_not_hold_the_process_at_exit():
    script = (
        "import time; from apps.monitoring.agents.daemon_pool import DaemonThreadPool\n"
        "pool = DaemonThreadPool(1); pool.submit(time.sleep, 60); time.sleep(0.2)\n"
        "pool.shutdown(wait=False, cancel_futures=True)\n"
    )
    # A standard pool would wait the whole minute for the sleeping call.
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)

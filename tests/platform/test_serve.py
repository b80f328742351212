"""`manage.py serve`: several Daphne workers behind one port; a worker that
dies is replaced, and stopping the supervisor stops them all."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workers_of(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return False


def answers(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).read() == b"ok"
    except OSError:
        return False


def test_workers_share_the_port_and_a_dead_one_is_replaced(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(AETHIR_VAR_DIR=str(tmp_path), DEBUG="1")
    supervisor = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        assert wait_for(lambda: answers(url) and len(workers_of(supervisor.pid)) == 2)
        first = workers_of(supervisor.pid)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        # The survivor keeps answering; the supervisor starts a replacement.
        assert wait_for(lambda: len(workers_of(supervisor.pid) - {victim}) == 2)
        assert wait_for(lambda: answers(url))
        replacement = workers_of(supervisor.pid) - first
        assert len(replacement) == 1
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=20)
    assert workers_of(supervisor.pid) == set()
    assert not answers(url)


def test_daphnes_proxy_headers_are_refused_for_trusted_proxies():
    # Daphne's flag trusts the leftmost X-Forwarded-For entry, which the client
    # writes: every per-address limit would be forgeable again.
    with pytest.raises(CommandError, match="TRUSTED_PROXIES"):
        call_command("serve", "--proxy-headers", "--port", "0")

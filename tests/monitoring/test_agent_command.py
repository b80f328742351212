"""An agent command stops cleanly on Ctrl-C and on a service manager's
SIGTERM, also when it was started with SIGINT ignored (a background job of
a non-interactive shell inherits that), closing its agent first."""

import signal
import subprocess
import sys

import pytest

# A stand-in agent: runs until cancelled, says when it runs and when it closed.
SCRIPT = """
import asyncio, sys
from apps.monitoring.management.agent_command import run_agent

class Agent:
    async def run(self):
        print("running", flush=True)
        await asyncio.Event().wait()

    async def close(self):
        print("closed", flush=True)

run_agent(Agent())
print("exited", flush=True)
"""


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    "sig,sigint_ignored",
    [(signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGTERM, True)],
)
def test_an_agent_stops_and_closes_on_a_stop_signal(sig, sigint_ignored):
    agent = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )
    try:
        assert agent.stdout.readline().strip() == "running"
        agent.send_signal(sig)
        out, _ = agent.communicate(timeout=30)
    finally:
        agent.kill()
    assert out.split() == ["closed", "exited"]
    assert agent.returncode == 0

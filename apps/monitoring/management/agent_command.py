"""What the commands that run an agent (``run_checker``,
``run_provider_agent``) share: the log format, and running the agent until
it stops, Ctrl-C or SIGTERM, closing it either way."""

import asyncio
import faulthandler
import logging
import os
import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def start_logging(name: str) -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(message)s")


def run_agent(agent, before=None) -> None:
    """Run ``agent`` until it stops, Ctrl-C (SIGINT) or SIGTERM, then close
    it. ``before``, a coroutine function, runs first (a failure there stops
    the command before the agent runs). A second signal while it closes
    ends the process at once.

    The signals are handled here rather than left to Python's defaults:
    SIGTERM (what a service manager sends) would end the process without
    closing the agent, and a process started in the background by a
    non-interactive shell inherits SIGINT ignored, so Ctrl-C or ``kill -INT``
    did nothing at all (a provider agent went on running after its test
    stopped it)."""

    # `kill -USR1 <pid>` prints every thread's stack to stderr: what an agent
    # that does not stop (or answer) is waiting for.
    faulthandler.register(signal.SIGUSR1, all_threads=True)

    async def main():
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        stopping = []

        def stop(signum: int) -> None:
            if stopping:
                os._exit(128 + signum)  # asked twice: no more waiting for a clean close
            stopping.append(signum)
            task.cancel()

        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, stop, signum)
        if before is not None:
            await before()
        try:
            await agent.run()
        finally:
            await agent.close()

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass

"""What the commands that run an agent (``run_checker``,
``run_provider_agent``) share: the log format, and running the agent until
it stops or Ctrl-C, closing it either way."""

import asyncio
import faulthandler
import logging
import signal


def start_logging(name: str) -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(message)s")


def run_agent(agent, before=None) -> None:
    """Run ``agent`` until it stops or Ctrl-C, then close it. ``before``, a
    coroutine function, runs first (a failure there stops the command before
    the agent runs)."""

    # `kill -USR1 <pid>` prints every thread's stack to stderr: what an agent
    # that does not stop (or answer) is waiting for.
    faulthandler.register(signal.SIGUSR1, all_threads=True)

    async def main():
        if before is not None:
            await before()
        try:
            await agent.run()
        finally:
            await agent.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

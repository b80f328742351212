import asyncio
import logging
from pathlib import Path

from django.core.management.base import BaseCommand

from apps.monitoring.agents.checker import CheckerAgent


class Command(BaseCommand):
    help = "Run a checker agent: probe the assigned nodes each epoch and submit signed reports."

    def add_arguments(self, parser):
        parser.add_argument("--api-url", default="http://127.0.0.1:8000")
        parser.add_argument("--token", required=True, help="the checker's agent token")
        parser.add_argument("--key", type=Path, default=Path("checker-key.pem"), help="Ed25519 key file (created if missing)")
        parser.add_argument("--probe-every", type=float, default=5.0)
        parser.add_argument("--timeout", type=float, default=2.0)

    def handle(self, *args, **o):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s checker %(levelname)s %(message)s")
        agent = CheckerAgent(
            api_url=o["api_url"].rstrip("/"), token=o["token"], key_path=o["key"],
            probe_every=o["probe_every"], timeout=o["timeout"],
        )

        async def main():
            try:
                await agent.run()
            finally:
                await agent.close()

        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            pass

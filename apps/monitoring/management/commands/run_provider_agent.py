from django.core.management.base import BaseCommand

from apps.monitoring.agents.provider import ProviderAgent
from apps.monitoring.management.agent_command import run_agent, start_logging


class Command(BaseCommand):
    help = "Run a provider agent: serve the node's health endpoint and post GPU telemetry to the dashboard."

    def add_arguments(self, parser):
        parser.add_argument("--api-url", default="http://127.0.0.1:8000")
        parser.add_argument("--token", required=True, help="the node's agent token (shown once at registration)")
        parser.add_argument("--host", default="127.0.0.1", help="address the health endpoint listens on")
        parser.add_argument("--port", type=int, default=9100)
        parser.add_argument("--sample-every", type=float, default=5.0)
        parser.add_argument("--post-every", type=float, default=15.0)
        parser.add_argument("--no-nvml", action="store_true", help="always synthesise telemetry")

    def handle(self, *args, **o):
        start_logging("provider-agent")
        agent = ProviderAgent(
            api_url=o["api_url"].rstrip("/"),
            token=o["token"],
            host=o["host"],
            port=o["port"],
            sample_every=o["sample_every"],
            post_every=o["post_every"],
            allow_nvml=not o["no_nvml"],
        )

        async def start():
            me = await agent.identify()
            await agent.serve()
            self.stdout.write(
                f"Node {me['node']['name']}: health endpoint {agent.endpoint}, posting to {agent.api_url}"
            )

        run_agent(agent, before=start)

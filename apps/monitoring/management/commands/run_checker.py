from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.monitoring.agents.addresses import ENV_VAR, AddressPolicy
from apps.monitoring.agents.checker import CheckerAgent
from apps.monitoring.management.agent_command import run_agent, start_logging


class Command(BaseCommand):
    help = "Run a checker agent: probe the assigned nodes each epoch and submit signed reports."

    def add_arguments(self, parser):
        parser.add_argument("--api-url", default="http://127.0.0.1:8000")
        parser.add_argument("--token", required=True, help="the checker's agent token")
        parser.add_argument(
            "--key", type=Path, default=Path("checker-key.pem"), help="Ed25519 key file (created if missing)"
        )
        parser.add_argument("--probe-every", type=float, default=5.0)
        parser.add_argument("--timeout", type=float, default=2.0)
        parser.add_argument(
            "--allow-net",
            action="append",
            default=[],
            metavar="CIDR",
            help="let probes reach this range although it is not public (loopback, private, "
            f"link-local...), e.g. 127.0.0.0/8; repeatable; adds to {ENV_VAR}",
        )

    def handle(self, *args, **o):
        start_logging("checker")
        try:
            policy = AddressPolicy.from_env(o["allow_net"])
        except ValueError as exc:
            raise CommandError(f"Bad --allow-net or {ENV_VAR}: {exc}") from None
        if policy.allow:
            self.stdout.write(f"Probes may also reach: {', '.join(map(str, policy.allow))}")
        agent = CheckerAgent(
            api_url=o["api_url"].rstrip("/"),
            token=o["token"],
            key_path=o["key"],
            probe_every=o["probe_every"],
            timeout=o["timeout"],
            policy=policy,
        )
        run_agent(agent)

import os

from django.core.management.base import BaseCommand

from apps.monitoring.agents.provider import ProviderAgent
from apps.monitoring.agents.workloads import EngineSettings
from apps.monitoring.management.agent_command import run_agent, start_logging


class Command(BaseCommand):
    help = (
        "Run a provider agent: serve the node's health endpoint, post GPU telemetry to the dashboard and, "
        "with a container engine, run the node's leases."
    )

    def add_arguments(self, parser):
        parser.add_argument("--api-url", default="http://127.0.0.1:8000")
        parser.add_argument("--token", required=True, help="the node's agent token (shown once at registration)")
        parser.add_argument("--host", default="127.0.0.1", help="address the health endpoint listens on")
        parser.add_argument("--port", type=int, default=9100)
        parser.add_argument("--sample-every", type=float, default=5.0)
        parser.add_argument("--post-every", type=float, default=15.0)
        parser.add_argument("--no-nvml", action="store_true", help="always synthesise telemetry")
        parser.add_argument(
            "--disk-path", default=".", help="a path on the disk workloads use: its free and total space are reported"
        )
        engine = parser.add_argument_group("workloads (renters' containers)")
        engine.add_argument(
            "--engine",
            default=os.environ.get("DOCKER_HOST") or None,
            help="the Docker Engine API socket (Docker, or Podman's compatible service), e.g. "
            "unix:///run/docker.sock; default $DOCKER_HOST; none: this node runs no workloads",
        )
        engine.add_argument(
            "--engine-runtime",
            default=None,
            help="OCI runtime for each container (Docker honours it; Podman's service takes its own --runtime)",
        )
        engine.add_argument(
            "--publish-host", default="127.0.0.1", help="host address containers' ports are published on"
        )
        engine.add_argument(
            "--advertise-host", default=None, help="address endpoints are reported with when --publish-host is 0.0.0.0"
        )
        engine.add_argument("--reconcile-every", type=float, default=2.0, help="seconds between reconcile passes")
        engine.add_argument("--log-every", type=float, default=5.0, help="least seconds between a lease's log tails")
        engine.add_argument("--pids-limit", type=int, default=1024, help="processes and threads a container may have")
        engine.add_argument("--ulimit-nofile", type=int, default=1024, help="open files per container process")
        engine.add_argument("--ulimit-nproc", type=int, default=1024, help="processes per container user")
        engine.add_argument("--log-max-size", default="1m", help="the engine's log file size per container")
        engine.add_argument(
            "--gpus",
            choices=["auto", "yes", "no"],
            default="auto",
            help="attach NVIDIA GPUs to containers (auto: where NVML or nvidia-smi finds them)",
        )

    def handle(self, *args, **o):
        start_logging("provider-agent")
        settings = None
        if o["engine"]:
            settings = EngineSettings(
                url=o["engine"],
                runtime=o["engine_runtime"],
                publish_host=o["publish_host"],
                advertise_host=o["advertise_host"],
                gpus={"auto": None, "yes": True, "no": False}[o["gpus"]],
                pids_limit=o["pids_limit"],
                nofile=o["ulimit_nofile"],
                nproc=o["ulimit_nproc"],
                log_max_size=o["log_max_size"] or None,
            )
        agent = ProviderAgent(
            api_url=o["api_url"].rstrip("/"),
            token=o["token"],
            host=o["host"],
            port=o["port"],
            sample_every=o["sample_every"],
            post_every=o["post_every"],
            allow_nvml=not o["no_nvml"],
            engine=settings,
            reconcile_every=o["reconcile_every"],
            log_every=o["log_every"],
            disk_path=o["disk_path"],
        )

        async def start():
            me = await agent.identify()
            await agent.serve()
            self.stdout.write(
                f"Node {me['node']['name']}: health endpoint {agent.endpoint}, posting to {agent.api_url}"
            )
            if settings is None:
                self.stdout.write(
                    "No container engine (--engine or DOCKER_HOST): this node runs no workloads, and reports "
                    "each lease failed with that reason."
                )
            else:
                self.stdout.write(f"Running this node's leases on the container engine at {settings.url}.")

        run_agent(agent, before=start)

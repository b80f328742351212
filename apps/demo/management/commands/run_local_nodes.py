"""The real provider agents of the demo's nodes on this machine
(``apps.demo.local_nodes``), in one process: each serves its node's health
endpoint on loopback, posts telemetry and runs its node's leases on the
container engine. The demo's checkers probe them like any other node
(their endpoints go to the ``--owned-endpoints`` file)."""

import asyncio
import logging
import signal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.demo import local_nodes, simulated_network
from apps.demo.simulator import OwnedEndpoints
from apps.monitoring.agents.provider import ProviderAgent
from apps.monitoring.agents.workloads import EngineSettings


class Command(BaseCommand):
    help = (
        "Run the real provider agents of the demo's nodes on this machine (this-machine-*): health endpoints, "
        "telemetry and renters' containers on the container engine."
    )

    def add_arguments(self, parser):
        parser.add_argument("--api-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--engine",
            default=None,
            help="the container engine's URL, used as given (default: the first of CONTAINER_ENGINE_URL, "
            "DOCKER_HOST and var/container-engine/engine.sock that answers); none: the nodes report every "
            "lease failed",
        )
        parser.add_argument("--owned-endpoints", type=Path, default=None, metavar="FILE")
        parser.add_argument("--sample-every", type=float, default=5.0)
        parser.add_argument("--post-every", type=float, default=15.0)
        parser.add_argument("--reconcile-every", type=float, default=1.0)
        parser.add_argument("--log-every", type=float, default=2.0)

    def handle(self, *args, **o):
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s this-machine %(levelname)s %(message)s")
        logging.getLogger("apps.monitoring.agents").setLevel(logging.INFO)
        # An engine named is used as it is: one that does not answer now (busy,
        # restarting) is the agents' to wait for, as on any node.
        url = o["engine"] if o["engine"] != "none" else None
        if o["engine"] is None:
            url = local_nodes.find_engine()
        adopted = local_nodes.adopt()
        if not adopted:
            raise CommandError(
                f"No nodes on this machine to run: run_demo registers them ({local_nodes.PREFIX}1, ...) "
                "when it finds a container engine."
            )
        engine = None
        if url:
            # The demo's nodes declare GPUs this machine need not have: none is attached.
            engine = EngineSettings(url=url, gpus=False)
        agents = [
            ProviderAgent(
                api_url=o["api_url"].rstrip("/"),
                token=token,
                sample_every=o["sample_every"],
                post_every=o["post_every"],
                seed=node_id,
                allow_nvml=False,
                engine=engine,
                reconcile_every=o["reconcile_every"],
                log_every=o["log_every"],
            )
            for node_id, token in adopted
        ]
        asyncio.run(self.main(agents, OwnedEndpoints(o["owned_endpoints"]), url))

    async def main(self, agents: list[ProviderAgent], owned: OwnedEndpoints, url: str | None):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await asyncio.gather(*(a.identify() for a in agents))
            for a in agents:
                await a.serve()
            endpoints = {a.node_id: a.endpoint for a in agents}
            owned.add(endpoints)
            await asyncio.to_thread(simulated_network.set_endpoints, endpoints)
            where = f"on the container engine at {url}" if url else "with no container engine (leases fail)"
            self.stdout.write(f"Agents running for {len(agents)} node(s) on this machine, {where}.")
            await asyncio.gather(*(a.run(stop) for a in agents))
        finally:
            for a in agents:
                await a.close()

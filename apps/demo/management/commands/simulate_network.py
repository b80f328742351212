import asyncio
import logging
import random
import resource
import signal
from pathlib import Path

import aiohttp
from django.core.management.base import BaseCommand, CommandError

from apps.demo import simulated_network
from apps.demo.simulator import OwnedEndpoints, Simulator


class Command(BaseCommand):
    help = (
        "Run the agents of the network's nodes and checkers in one process on loopback, "
        "with fault injection, against a running dashboard."
    )

    def add_arguments(self, parser):
        parser.add_argument("--api-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--role",
            choices=["all", "providers", "checkers"],
            default="all",
            help="run only the nodes' agents or only the checkers' (default: both)",
        )
        parser.add_argument("--nodes", type=int, default=None, help="at most this many nodes (default: all)")
        parser.add_argument("--checkers", type=int, default=None, help="at most this many checkers (default: all)")
        parser.add_argument("--down", type=float, default=0.02, help="fraction of nodes down from the start")
        parser.add_argument("--slow", type=float, default=0.03, help="fraction of nodes answering slowly")
        parser.add_argument("--slow-ms", type=int, default=400)
        parser.add_argument("--lie", type=float, default=0.01, help="fraction of nodes lying about their GPU")
        parser.add_argument("--liar-checkers", type=int, default=1, help="checkers that report falsely")
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            metavar="NODE_ID:KIND",
            help="a fault on one node: down, slow or lie (repeatable)",
        )
        parser.add_argument("--churn", type=float, default=0.002, help="chance per node per 10 s to flip up/down")
        parser.add_argument("--sample-every", type=float, default=5.0)
        parser.add_argument("--post-every", type=float, default=15.0)
        parser.add_argument("--probe-every", type=float, default=5.0)
        parser.add_argument("--duration", type=float, default=0, help="seconds to run (0: until Ctrl-C)")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--no-adopt", action="store_true", help="don't bring nodes registered later (without an endpoint) to life"
        )
        parser.add_argument(
            "--owned-endpoints",
            type=Path,
            default=None,
            metavar="FILE",
            help="where the nodes' process lists the endpoints it runs, and the checkers' process "
            "reads them: its checkers probe those and no other (needed with --role checkers)",
        )

    def handle(self, *args, **o):
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s simulate %(levelname)s %(message)s")
        logging.getLogger("apps.demo.simulator").setLevel(logging.INFO)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one listening socket per node
        # Checkers time nodes' answers: in a process of their own they don't
        # count the nodes' agents' work (or each other's) as node latency.
        role = o["role"]
        if role == "checkers" and not o["owned_endpoints"]:
            raise CommandError(
                "--role checkers needs --owned-endpoints FILE (the one the --role providers process "
                "writes): the simulator's checkers probe only the nodes it runs."
            )
        nodes = simulated_network.adopt_nodes(o["nodes"]) if role in ("all", "providers") else []
        checkers = simulated_network.adopt_checkers(o["checkers"]) if role in ("all", "checkers") else []
        if (role != "checkers" and not nodes) or (role != "providers" and not checkers):
            raise CommandError(
                "Nothing to simulate: register GPU nodes and activate checkers first (the demo seed does)."
            )
        rng = random.Random(o["seed"])
        for n in nodes:
            roll = rng.random()
            if roll < o["down"]:
                n.faults.down = True
            elif roll < o["down"] + o["slow"]:
                n.faults.slow_ms = o["slow_ms"]
            elif roll < o["down"] + o["slow"] + o["lie"]:
                n.faults.lie = True
        by_id = {n.node_id: n for n in nodes}
        for spec in o["fault"] if role != "checkers" else []:
            node_id, _, kind = spec.partition(":")
            n = by_id.get(int(node_id))
            if n is None or kind not in {"down", "slow", "lie"}:
                raise CommandError(f"Bad --fault {spec!r}: use NODE_ID:down|slow|lie for a simulated node.")
            n.faults.down, n.faults.slow_ms, n.faults.lie = (
                kind == "down",
                o["slow_ms"] if kind == "slow" else 0,
                kind == "lie",
            )
        for c in checkers[: o["liar_checkers"]] if o["liar_checkers"] and len(checkers) > 3 else []:
            c.liar = True
        self.stdout.write(
            f"Simulating {len(nodes)} provider agents and {len(checkers)} checker agents against {o['api_url']} "
            f"({sum(n.faults.down for n in nodes)} down, {sum(bool(n.faults.slow_ms) for n in nodes)} slow, "
            f"{sum(n.faults.lie for n in nodes)} lying, {sum(c.liar for c in checkers)} false checkers)."
        )
        asyncio.run(self.main(o, nodes, checkers))

    async def main(self, o, nodes, checkers):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=20)) as session:
            sim = Simulator(
                o["api_url"].rstrip("/"),
                nodes,
                checkers,
                sample_every=o["sample_every"],
                post_every=o["post_every"],
                probe_every=o["probe_every"],
                churn=o["churn"],
                seed=o["seed"],
                on_endpoints=simulated_network.set_endpoints,
                find_new=None if o["no_adopt"] or o["role"] == "checkers" else simulated_network.adopt_new_nodes,
                owned=OwnedEndpoints(o["owned_endpoints"]),
                # Rented simulated nodes report their leases running (simulated).
                find_leases=None if o["role"] == "checkers" else simulated_network.active_leases,
            )
            await sim.start(session)
            self.stdout.write("Agents running; Ctrl-C stops.")
            if o["duration"]:
                loop.call_later(o["duration"], stop.set)
            await sim.run(stop)
            self.stdout.write(f"Stopped: {sim.stats()}")

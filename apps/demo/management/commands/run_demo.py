"""Everything in one go: migrate, genesis, seed, then the web server, the
agents' simulator, the simulated renters and token holders and the
scheduler as child processes. Ctrl-C stops all, the web server last.

When it finds a container engine (``apps.demo.local_nodes``: never
installed from here), a few nodes of the demo provider run on this machine
with real agents (``run_local_nodes``), and a renter's container runs for
real on them; every other node's workload is simulated."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.core import epochs
from apps.demo import local_nodes, seed
from apps.demo.seed import DEMO_ACCOUNTS, DEMO_PASSWORD


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = (
        "Run the living demo network: web server, simulated provider and checker agents, simulated renters "
        "and token holders, and the scheduler."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--nodes", type=int, default=1000)
        parser.add_argument("--checkers", type=int, default=60)
        parser.add_argument(
            "--epoch-seconds",
            type=int,
            default=None,
            help="epoch length of a new demo network (default: one minute; at least 10)",
        )
        parser.add_argument("--no-seed", action="store_true")
        parser.add_argument("--no-simulator", action="store_true")
        parser.add_argument(
            "--on-this-machine",
            type=int,
            default=local_nodes.COUNT,
            help="nodes whose real agents run renters' containers on this machine's container engine, when "
            f"one answers (default {local_nodes.COUNT}; 0: none)",
        )
        parser.add_argument(
            "--engine",
            default=None,
            help="the container engine's URL (default: the first of CONTAINER_ENGINE_URL, DOCKER_HOST and "
            "var/container-engine/engine.sock that answers; scripts/container-engine starts one)",
        )

    def handle(self, *args, **o):
        self._check_port_free(o["host"], o["port"])
        # SIGTERM (a service manager, `kill`) stops the demo as Ctrl-C does,
        # also while it is still starting, so no child is left behind.
        signal.signal(signal.SIGTERM, _interrupt)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("genesis")
        if o["epoch_seconds"]:
            try:
                seed.set_epoch_length(o["epoch_seconds"])
            except seed.SeedError as exc:
                raise CommandError(str(exc)) from None
        # Checkers probe a few times per epoch and agents post telemetry at
        # least once per epoch, however short the epochs are.
        length = int(epochs.length().total_seconds())
        probe_every, post_every = min(15, max(2, length // 4)), min(30, max(5, length // 2))
        url = f"http://{o['host']}:{o['port']}"
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        env = dict(os.environ, PYTHONUNBUFFERED="1", REQUEST_LOG_LEVEL="ERROR")
        # The web server first, so the site answers while the demo is seeded.
        children = [
            (
                "web",
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "daphne",
                        "-b",
                        o["host"],
                        "-p",
                        str(o["port"]),
                        "--access-log",
                        os.devnull,
                        "aethir_web.asgi:application",
                    ],
                    env=env,
                ),
            ),
        ]
        try:
            self._wait_for(url, children[0][1])
            self.stdout.write(self.style.SUCCESS(f"Serving {url}/"))
            engine = self._find_engine(o) if settings.DEMO_MODE and not o["no_simulator"] else None
            on_this_machine = o["on_this_machine"] if engine else 0
            if settings.DEMO_MODE and not o["no_seed"]:
                call_command("seed_demo", nodes=o["nodes"], checkers=o["checkers"], on_this_machine=on_this_machine)
            elif on_this_machine:
                seed.nodes_on_this_machine(on_this_machine)
            # Then the scheduler (after the seed, which settles its own history)
            # and the agents.
            children.append(("scheduler", subprocess.Popen([*manage, "run_scheduler"], env=env)))
            # Notifications: e-mails (printed, in demo mode) and webhooks, sent
            # outside every request and settlement.
            children.append(("notifications", subprocess.Popen([*manage, "run_notifications"], env=env)))
            if settings.DEMO_MODE and not o["no_simulator"]:
                # Renters and token holders: rentals come and go, a proposal is
                # always open and votes arrive every few seconds.
                children.append(
                    (
                        "users",
                        subprocess.Popen([*manage, "simulate_users", "--every", str(max(2, length // 6))], env=env),
                    )
                )
            if not o["no_simulator"]:
                # Nodes' and checkers' agents in separate processes, as on a real
                # network where each runs on its own machine: in one process a
                # busy moment of the nodes' agents would read as node latency.
                # The checkers start once the nodes listen, so that no checker
                # finds a node's old endpoint and another its new one. They
                # probe only the loopback endpoints the nodes' process lists
                # in this file, never an endpoint a provider declared.
                owned = Path(tempfile.mkdtemp(prefix="aethir-demo-")) / "endpoints.json"
                self._cleanup = lambda: shutil.rmtree(owned.parent, ignore_errors=True)
                for role in ("providers", "checkers"):
                    child = subprocess.Popen(
                        [
                            *manage,
                            "simulate_network",
                            "--role",
                            role,
                            "--api-url",
                            url,
                            "--probe-every",
                            str(probe_every),
                            "--post-every",
                            str(post_every),
                            "--owned-endpoints",
                            str(owned),
                        ],
                        env=env,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    children.append((f"simulator ({role})", child))
                    self._follow(child, wait=role == "providers")
                    if role == "providers" and settings.DEMO_MODE and local_nodes.ids():
                        # The nodes on this machine: real agents, on the engine (or
                        # with none, when it is gone since they were registered).
                        child = subprocess.Popen(
                            [
                                *manage,
                                "run_local_nodes",
                                "--api-url",
                                url,
                                "--engine",
                                engine or "none",
                                "--post-every",
                                str(post_every),
                                "--owned-endpoints",
                                str(owned),
                            ],
                            env=env,
                            stdout=subprocess.PIPE,
                            text=True,
                        )
                        children.append(("nodes on this machine", child))
                        self._follow(child)
        except BaseException:
            self._stop(children)
            raise
        self.stdout.write(self.style.SUCCESS(f"\nThe demo network is live at {url}/"))
        if settings.DEMO_MODE:
            self.stdout.write(f"Log in as any of: {', '.join(DEMO_ACCOUNTS)} (password: {DEMO_PASSWORD}), or sign up.")
            if engine and not o["no_simulator"] and local_nodes.ids():
                self.stdout.write(
                    "Rent a node on this machine and pick the template Web page (busybox httpd): its container runs "
                    "here, and its endpoint opens in the browser:"
                )
                for pk, name in local_nodes.nodes().values_list("pk", "name"):
                    self.stdout.write(f"  {name}: {url}/marketplace/nodes/{pk}/")
        self.stdout.write("Ctrl-C stops everything.\n")
        stopping = []
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        try:
            while not stopping:
                for name, child in children:
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited with {child.returncode}; stopping the demo.")
                        stopping.append(True)
                time.sleep(0.5)
        finally:
            self._stop(children)
            self.stdout.write("Stopped.")

    _cleanup = staticmethod(lambda: None)

    def _follow(self, child: subprocess.Popen, wait: bool = True) -> None:
        """Pass an agents' process's output on; with ``wait``, until its agents run."""
        running = threading.Event()
        threading.Thread(target=self._relay, args=(child.stdout, running), daemon=True).start()
        while wait and not running.wait(0.5) and child.poll() is None:
            pass

    def _find_engine(self, o) -> str | None:
        """The container engine the nodes on this machine use, if one answers; says which."""
        engine = local_nodes.find_engine(o["engine"])
        if engine is None:
            where = o["engine"] or ", ".join(local_nodes.candidates())
            then = (
                "the nodes on this machine report every lease failed (no engine)"
                if local_nodes.ids()
                else "every node's workload is simulated"
            )
            self.stdout.write(
                f"No container engine answers ({where}): {then}. scripts/container-engine starts one (Podman); "
                "start the demo again once it runs."
            )
            return None
        if o["on_this_machine"]:
            self.stdout.write(
                f"Container engine at {engine}: {o['on_this_machine']} nodes on this machine "
                f"({local_nodes.PREFIX}1, ...) run renters' containers for real."
            )
            if not local_nodes.has_image(engine):
                self.stdout.write(
                    f"The engine has no {local_nodes.IMAGE} (the web-demo template's image): "
                    "scripts/container-engine builds it."
                )
        return engine

    def _stop(self, children) -> None:
        """Stop in reverse order of start: agents and the scheduler first,
        the web server last, so their final posts still find it."""
        deadline = time.monotonic() + 15
        for _, child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
                try:
                    child.wait(timeout=max(0.1, min(5, deadline - time.monotonic())))
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        self._cleanup()

    def _relay(self, stream, running: threading.Event) -> None:
        """Pass a simulator's output on, noting when its agents run."""
        for line in stream:
            self.stdout.write(line, ending="")
            self.stdout.flush()
            if line.startswith("Agents running"):
                running.set()

    def _check_port_free(self, host: str, port: int) -> None:
        with socket.socket() as probe:
            # As the server will: a port in TIME_WAIT is free, a listener is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise CommandError(
                    f"Cannot listen on {host}:{port} ({exc.strerror}); is the demo already running? "
                    "Stop it, or pick another port with --port."
                ) from None

    def _wait_for(self, url: str, web: subprocess.Popen) -> None:
        for _ in range(300):
            if web.poll() is not None:
                raise CommandError(f"The web server exited with {web.returncode} before it answered on {url}.")
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.2)

"""Everything in one go: migrate, genesis, seed, then the web server, the
agents' simulator, the simulated renters and token holders and the
scheduler as child processes. Ctrl-C stops all, the web server last."""

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
from apps.demo import seed
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
            if settings.DEMO_MODE and not o["no_seed"]:
                call_command("seed_demo", nodes=o["nodes"], checkers=o["checkers"])
            # Then the scheduler (after the seed, which settles its own history)
            # and the agents.
            children.append(("scheduler", subprocess.Popen([*manage, "run_scheduler"], env=env)))
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
                    running = threading.Event()
                    threading.Thread(target=self._relay, args=(child.stdout, running), daemon=True).start()
                    if role == "providers":
                        while not running.wait(0.5) and child.poll() is None:
                            pass
        except BaseException:
            self._stop(children)
            raise
        self.stdout.write(self.style.SUCCESS(f"\nThe demo network is live at {url}/"))
        if settings.DEMO_MODE:
            self.stdout.write(f"Log in as any of: {', '.join(DEMO_ACCOUNTS)} (password: {DEMO_PASSWORD}), or sign up.")
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

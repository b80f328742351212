"""Several Daphne workers behind one port.

One Python process serves one request at a time per CPU, so a production
site runs a worker per core. This command opens the listening socket itself
and hands it to N Daphne processes (``daphne --fd``); the kernel spreads the
connections over them. A worker that dies is started again, with a short
back-off so a worker that cannot start does not spin. Ctrl-C or SIGTERM
stops them all.

Live pages work with any number of workers: every change is recorded in
the outbox, and each worker runs a relay (``apps/platform/relay.py``). With
``REDIS_URL`` one elected relay publishes for all; on the in-memory channel
layer every worker publishes to its own pages, resuming after a restart from
the cursor of its slot (``AETHIR_RELAY_SLOT``, the worker's number here).

    python manage.py serve --workers 4 --port 8000

The client's address behind a reverse proxy comes from ``TRUSTED_PROXIES``
(``apps.platform.ratelimit.client_ip``), not from Daphne's ``--proxy-headers``:
Daphne would take the leftmost ``X-Forwarded-For`` entry, which the client
writes, and every per-address limit would be forgeable again.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time

from django.core.management.base import BaseCommand, CommandError

RESTART_BACKOFF = (0.5, 1, 2, 5, 10)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: a worker gets SIGTERM if the supervisor itself is killed, so a
    restarted supervisor never finds the port held by orphans."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Command(BaseCommand):
    help = "Serve the site with several Daphne workers on one port."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
        parser.add_argument("--proxy-headers", action="store_true", help="refused: set TRUSTED_PROXIES instead")
        parser.add_argument("--access-log", default=None, help="file for the access log (default: none)")

    def handle(self, *args, **o):
        if o["proxy_headers"]:
            raise CommandError(
                "--proxy-headers would trust the client-written leftmost X-Forwarded-For entry; "
                "set TRUSTED_PROXIES to the number of proxies in front instead."
            )
        if o["workers"] < 1:
            raise CommandError("--workers must be at least 1")
        family = socket.AF_INET6 if ":" in o["host"] else socket.AF_INET
        try:
            listener = socket.create_server((o["host"], o["port"]), family=family, backlog=2048)
        except OSError as exc:
            raise CommandError(f"cannot listen on {o['host']}:{o['port']}: {exc}") from exc
        listener.set_inheritable(True)
        fd = listener.fileno()
        command = [sys.executable, "-m", "daphne", "--fd", str(fd)]
        # Daphne's own logging: warnings only, plus the access log if asked for
        # (a line per request costs real CPU under load).
        command += ["-v", "1", "--access-log", o["access_log"]] if o["access_log"] else ["-v", "0"]
        command.append("aethir_web.asgi:application")

        def spawn(slot: int) -> subprocess.Popen:
            env = {**os.environ, "AETHIR_RELAY_SLOT": str(slot)}
            return subprocess.Popen(command, pass_fds=(fd,), env=env, preexec_fn=_die_with_parent)

        workers = [spawn(i) for i in range(o["workers"])]
        spawned_at = [time.monotonic()] * len(workers)
        failures = [0] * len(workers)
        self.stdout.write(
            f"Serving on http://{o['host']}:{o['port']}/ with {len(workers)} Daphne workers "
            f"(pids {', '.join(str(w.pid) for w in workers)})"
        )

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not stopping:
                time.sleep(0.5)
                for i, worker in enumerate(workers):
                    if stopping or worker.poll() is None:
                        continue
                    # A worker that lived a while before dying gets a fresh back-off.
                    if time.monotonic() - spawned_at[i] > 30:
                        failures[i] = 0
                    delay = RESTART_BACKOFF[min(failures[i], len(RESTART_BACKOFF) - 1)]
                    failures[i] += 1
                    self.stderr.write(f"worker {worker.pid} exited with {worker.returncode}; restarting in {delay}s")
                    time.sleep(delay)
                    workers[i], spawned_at[i] = spawn(i), time.monotonic()
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.terminate()
            deadline = time.monotonic() + 10
            for worker in workers:
                try:
                    worker.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    worker.kill()
            listener.close()

"""The notification worker: finds new events (``detect``) and sends the
queue of e-mails and webhook calls (``delivery``), outside every request
and every settlement. Several may run: claims and cursors are locked."""

import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from apps.notifications import delivery, detect


class Command(BaseCommand):
    help = "Detect notification events and deliver e-mails and signed webhooks, with retries."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one pass of detection and delivery, then exit")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between delivery passes")
        parser.add_argument(
            "--detect-every", type=float, default=5.0, help="seconds between looks for new events (a short write each)"
        )
        parser.add_argument("--threads", type=int, default=8, help="deliveries sent at once")

    def handle(self, *args, **o):
        if o["once"]:
            detect.run_all()
            delivery.run_due()
            return
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        sender = delivery.Sender(threads=o["threads"])
        self.stdout.write("notification worker running")
        detected = 0.0
        try:
            while not stop:
                close_old_connections()
                try:
                    if time.monotonic() - detected >= o["detect_every"]:
                        detect.run_all()
                        detected = time.monotonic()
                    if sender.busy() < o["threads"] * 4:
                        sender.submit(delivery.claim(limit=o["threads"] * 4))
                except Exception as exc:  # noqa: BLE001  one bad pass must not stop the worker
                    self.stderr.write(f"notification pass failed: {exc!r}")
                time.sleep(o["interval"])
        except KeyboardInterrupt:
            pass
        finally:
            sender.close()

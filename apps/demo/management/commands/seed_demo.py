import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.demo import seed


class Command(BaseCommand):
    help = "Seed the demo network (idempotent): nodes, checkers, delegators, proposals and some settled history."

    def add_arguments(self, parser):
        parser.add_argument("--nodes", type=int, default=1000)
        parser.add_argument("--checkers", type=int, default=60)
        parser.add_argument("--delegators", type=int, default=300)
        parser.add_argument("--history", type=int, default=8, help="epochs of settled history")
        parser.add_argument(
            "--on-this-machine",
            type=int,
            default=0,
            help="nodes of the demo provider whose agents run renters' containers on this machine "
            "(run_local_nodes); run_demo asks for them when it finds a container engine",
        )

    def handle(self, *args, **o):
        if not settings.DEMO_MODE:
            raise CommandError("The demo seed only runs in demo mode (DEMO_MODE=1).")
        started = time.monotonic()
        totals = {
            "GPU nodes": o["nodes"],
            "checkers": o["checkers"],
            "delegators": o["delegators"],
            "history epochs": o["history"],
        }
        bars = {}
        tty = sys.stdout.isatty()

        def progress(step, n):
            if tty:
                from tqdm import tqdm

                if step not in bars:
                    bars[step] = tqdm(total=totals[step], desc=f"seeding {step}", unit="")
                bars[step].update(n)
            elif step not in bars:
                bars[step] = True
                self.stdout.write(f"seeding {step}...")

        seed.seed(
            nodes=o["nodes"],
            n_checkers=o["checkers"],
            n_delegators=o["delegators"],
            history_epochs=o["history"],
            progress=progress,
            on_this_machine=o["on_this_machine"],
        )
        for bar in bars.values():
            if bar is not True:
                bar.close()
        self.stdout.write(self.style.SUCCESS(f"Demo network ready in {time.monotonic() - started:.0f}s."))

"""The demo's people besides the agents: token holders who keep a proposal
open and vote on it a few at a time (``apps.demo.holders``), and renters who
rent through the scheduler and end some rentals early (``apps.demo.renters``).
``run_demo`` starts it; Ctrl-C stops it."""

import random
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from apps.demo.holders import Holders
from apps.demo.renters import Renters


class Command(BaseCommand):
    help = "Simulate the demo's renters and token holders (demo mode only)."

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, default=10.0, help="seconds between steps")
        parser.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: run until stopped)")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, **o):
        if not settings.DEMO_MODE:
            raise CommandError("Simulated users only act in demo mode (DEMO_MODE=1).")
        rng = random.Random(o["seed"])
        people = [("holders", Holders(rng)), ("renters", Renters(rng))]
        done = 0
        try:
            while not o["steps"] or done < o["steps"]:
                for name, sim in people:
                    try:
                        result = sim.step()
                    except DatabaseError as exc:  # a busy moment; the next step tries again
                        self.stderr.write(f"{name}: {exc}; trying again in {o['every']:.0f}s")
                        continue
                    if result.get("created"):
                        self.stdout.write(f"holders: opened proposal #{result['created']}")
                done += 1
                if not o["steps"] or done < o["steps"]:
                    time.sleep(o["every"])
        except KeyboardInterrupt:
            pass

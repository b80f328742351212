"""``settle_epoch`` that holds still half-way, for the fault drills: after
the named step it sleeps inside the epoch's open transaction, so a drill
can kill a real settler there and check that nothing was half-written.
Settlement itself reads no drill setting; this command passes it the
progress callback that pauses."""

import sys
import time

from django.core.management import CommandError

from apps.settlement import services
from apps.settlement.management.commands import settle_epoch


class Command(settle_epoch.Command):
    help = "Settle like settle_epoch, but pause for a while after one step (for fault drills that kill the settler)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--pause-after",
            required=True,
            choices=services.STEPS[:-1],
            help="the step after which to pause (the epoch's transaction stays open)",
        )
        parser.add_argument("--pause-seconds", type=float, default=60.0)

    def handle(self, *args, pause_after, pause_seconds, **options):
        if pause_seconds < 0:
            raise CommandError("--pause-seconds must not be negative.")
        # ``settle`` reports a step as it begins: "after X" is the moment the
        # step following X is reported.
        self.pause_at = services.STEPS[services.STEPS.index(pause_after) + 1]
        self.pause_after, self.pause_seconds = pause_after, pause_seconds
        super().handle(*args, **options)

    def on_step(self, epoch: int, step: str) -> None:
        if step != self.pause_at:
            return
        # Straight to stderr, flushed: a drill watches for this line to know
        # the settler is half-way.
        print(
            f"epoch {epoch}: pausing after step {self.pause_after} for {self.pause_seconds:g} s",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(self.pause_seconds)

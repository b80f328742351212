from django.core.management.base import BaseCommand

from apps.core import epochs
from apps.monitoring import consensus


class Command(BaseCommand):
    help = "Compute checker consensus (and node status) for every finished epoch not yet done."

    def add_arguments(self, parser):
        parser.add_argument("--epoch", type=int, help="only this epoch")
        parser.add_argument(
            "--grace", type=float, default=5.0, help="seconds after an epoch ends to wait for late reports"
        )

    def handle(self, *args, epoch=None, grace=5.0, **options):
        done = (
            consensus.close_finished(grace_seconds=grace)
            if epoch is None
            else [epoch]
            if consensus.finalize(epoch)
            else []
        )
        for e in done:
            self.stdout.write(f"Consensus computed for epoch {e}.")
        if not done:
            self.stdout.write(f"Nothing to do (current epoch {epochs.current_number()}).")

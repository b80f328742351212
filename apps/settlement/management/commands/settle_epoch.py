import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.core import epochs
from apps.core.amounts import format_uath
from apps.settlement import services
from apps.settlement.models import EpochSettlement


class Command(BaseCommand):
    help = (
        "Settle every finished, unsettled epoch in order (or one with --epoch); each epoch "
        "all-or-nothing, exactly once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--epoch", type=int, help="settle only this epoch")
        parser.add_argument("--dry-run", action="store_true", help="compute and print, then roll everything back")
        parser.add_argument("--limit", type=int, default=None, help="settle at most this many epochs")

    def handle(self, *args, epoch=None, dry_run=False, limit=None, **options):
        if epoch is not None:
            if epoch >= epochs.current_number():
                raise CommandError(f"Epoch {epoch} has not finished (current: {epochs.current_number()}).")
            todo = [epoch]
        else:
            todo = services.due_epochs()[:limit]
        if not todo:
            self.stdout.write(f"Nothing to settle (current epoch {epochs.current_number()}).")
            return
        tty = sys.stdout.isatty()
        bar = None
        if tty:
            from tqdm import tqdm

            bar = tqdm(total=len(todo) * len(services.STEPS), unit="step", desc="settling")
        for e in todo:

            def progress(step, e=e):
                if bar is not None:
                    bar.set_description(f"epoch {e}: {step}")
                    bar.update(1)
                self.on_step(e, step)

            try:
                with transaction.atomic():
                    report = services.settle(e, progress)
                    if dry_run:
                        transaction.set_rollback(True)
            except services.AlreadySettled:
                self.stdout.write(f"epoch {e}: already settled")
                continue
            self.stdout.write(self.line(report, dry_run))
        if bar is not None:
            bar.close()

    def on_step(self, epoch: int, step: str) -> None:
        """Called as each step of ``epoch`` begins, inside its transaction:
        a command built on this one (a fault drill's) can act there."""

    def line(self, r: EpochSettlement, dry_run: bool) -> str:
        prefix = "[dry run] " if dry_run else ""
        return (
            f"{prefix}epoch {r.epoch}: {r.nodes_valid} nodes with consensus, emission {format_uath(r.emission)} "
            f"(providers {format_uath(r.provider_emission)} to {r.nodes_paid} nodes, checkers "
            f"{format_uath(r.checker_emission)} to {r.checkers_paid}, community {format_uath(r.community_emission)}), "
            f"rentals {format_uath(r.rental_fees)}, refunds {format_uath(r.refunds)}, "
            f"slashed {format_uath(r.collateral_slashed + r.stake_slashed)}, {r.breaches} SLA breaches, "
            f"{r.jailed} jailed, ledger #{r.ledger_height}"
        )

from django.core.management.base import BaseCommand, CommandError

from apps.core.amounts import format_uath
from apps.core.verify import verify_ledger


class Command(BaseCommand):
    help = "Recompute the hash chain and check every ledger invariant; exits non-zero on any failure."

    def handle(self, *args, **options):
        report = verify_ledger()
        if not report.ok:
            for p in report.problems:
                self.stderr.write(f"FAIL {p}")
            first = report.first_bad_height
            where = f"; first bad transaction: #{first}" if first else ""
            raise CommandError(f"Ledger verification failed: {len(report.problems)} problem(s){where}.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Ledger OK: {report.transactions} transactions, {report.entries} entries, "
                f"{report.accounts} accounts, supply {format_uath(report.supply)} conserved, "
                f"head #{report.height}."
            )
        )

from django.core.management.base import BaseCommand, CommandError

from apps.core import checkpoints
from apps.core.amounts import format_uath
from apps.core.verify import verify_ledger


class Command(BaseCommand):
    help = (
        "Recompute the hash chain and check every ledger invariant; with --against, also check the chain "
        "against signed checkpoints saved earlier. Exits non-zero on any failure."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--against",
            metavar="FILE_OR_URL",
            help="Saved signed checkpoints (a file, or a URL such as /api/ledger/checkpoints/): "
            "fails if history was rewritten since any of them.",
        )
        parser.add_argument(
            "--public-key",
            metavar="HEX",
            help="Accept only checkpoints signed by this Ed25519 public key (the one you recorded).",
        )

    def handle(self, *args, against=None, public_key=None, **options):
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
        if against:
            self._against(against, public_key)

    def _against(self, source: str, public_key: str | None) -> None:
        try:
            saved, hashes = checkpoints.load(source)
        except (checkpoints.SourceError, OSError) as exc:
            raise CommandError(f"Cannot read checkpoints from {source}: {exc}") from None
        result = checkpoints.compare(saved, hashes, public_key=public_key)
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(f"FAIL {problem}")
            where = f"; first height that differs: #{result.first_bad_height}" if result.first_bad_height else ""
            raise CommandError(f"The chain does not match the saved checkpoints{where}.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Checkpoints OK: the chain matches {result.checked} signed checkpoint(s)"
                + (f" up to #{result.last_matching_height}." if result.last_matching_height else ".")
            )
        )

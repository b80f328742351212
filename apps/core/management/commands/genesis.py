from django.conf import settings
from django.core.management.base import BaseCommand

from apps.core import ledger
from apps.core.amounts import format_uath
from apps.core.parameters import ensure_defaults


class Command(BaseCommand):
    help = "Mint the whole supply once across the module accounts (does nothing if already done)."

    def add_arguments(self, parser):
        parser.add_argument("--supply-ath", type=int, default=settings.GENESIS_SUPPLY_ATH)

    def handle(self, *args, supply_ath, **options):
        ensure_defaults()
        tx = ledger.genesis(supply_ath)
        if tx is None:
            self.stdout.write(f"Genesis already done; supply {format_uath(ledger.supply())}.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Genesis minted {format_uath(ledger.supply())} (tx {tx.hash[:16]})."))

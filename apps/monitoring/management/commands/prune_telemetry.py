from django.core.management.base import BaseCommand

from apps.monitoring import retention


class Command(BaseCommand):
    help = "Delete raw telemetry past its retention window (per-epoch roll-ups are kept)."

    def handle(self, *args, **options):
        removed = retention.prune()
        self.stdout.write(", ".join(f"{n} {what}" for what, n in removed.items()) + " pruned.")

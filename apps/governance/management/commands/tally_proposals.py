from django.core.management.base import BaseCommand

from apps.governance import services


class Command(BaseCommand):
    help = "Tally every proposal whose voting has ended: refund or burn deposits, execute what passed."

    def handle(self, *args, **options):
        done = services.tally_due()
        for proposal in done:
            line = f"#{proposal.pk} {proposal.title}: {proposal.get_status_display()}"
            if proposal.status_reason:
                line += f" ({proposal.status_reason})"
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(f"{len(done)} proposal{'s' if len(done) != 1 else ''} tallied."))

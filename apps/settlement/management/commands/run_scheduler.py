import signal

from django.core.management.base import BaseCommand

from apps.settlement import scheduler


class Command(BaseCommand):
    help = (
        "Fix each epoch's assignment round as it starts, settle each finished epoch, tally governance and "
        "prune telemetry, until stopped."
    )

    def handle(self, *args, **options):
        stopping = []

        def stop(*_):
            stopping.append(True)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.stdout.write("Scheduler running; Ctrl-C stops.")
        scheduler.run(lambda: bool(stopping), log_line=lambda s: self.stdout.write(s))
        self.stdout.write("Scheduler stopped.")

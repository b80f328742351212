from django.apps import AppConfig


class PlatformConfig(AppConfig):
    """Infrastructure around the domain (see the package docstring)."""

    name = "apps.platform"
    label = "platform"
    verbose_name = "Platform"

    def ready(self):
        from apps.core import outbox

        from . import relay

        # A commit that wrote hints wakes this process's relay at once
        # instead of at its next poll; core only knows that someone listens.
        outbox.after_commit(relay.wake)

"""System checks: configuration mistakes stop ``manage.py`` at once, not the
first settlement an epoch later."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from . import checkpoints


@checks.register()
def ledger_signing_key(app_configs=None, **kwargs):
    if not settings.LEDGER_SIGNING_KEY:
        if settings.DEMO_MODE:
            return []  # generated on first use (apps.core.checkpoints)
        return [
            checks.Error(
                "Set LEDGER_SIGNING_KEY (64 hex digits): it signs the ledger's checkpoint after each settled epoch.",
                id="core.E001",
            )
        ]
    try:
        checkpoints.key_from_hex(settings.LEDGER_SIGNING_KEY)
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="core.E002")]
    return []

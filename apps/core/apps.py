from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The shared domain model: ledger, accounts, parameters.

    Feature apps (marketplace, staking, governance, monitoring) build on these
    models and move money only through :mod:`apps.core.ledger`.
    """

    name = "apps.core"
    label = "core"
    verbose_name = "Network core"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)

from django.apps import AppConfig


class ExplorerConfig(AppConfig):
    """The public ledger: transactions, accounts, and chain verification."""

    name = "apps.explorer"
    label = "explorer"

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People: sign-up, log-in, a wallet per user, and the demo faucet."""

    name = "apps.accounts"
    label = "accounts"

    def ready(self):
        from . import signals  # noqa: F401

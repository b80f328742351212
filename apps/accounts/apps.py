from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People: sign-up, log-in, a wallet per user, and the demo faucet."""

    name = "apps.accounts"
    label = "accounts"

    def ready(self):
        # The admin's log-in form says "wait" when the log-in limits refuse.
        from django.contrib import admin

        from . import signals  # noqa: F401
        from .forms import AdminLoginForm

        admin.site.login_form = AdminLoginForm

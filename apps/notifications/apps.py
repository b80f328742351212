from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Telling people what happened to what they own: in-app, e-mail and signed webhooks."""

    name = "apps.notifications"
    label = "notifications"

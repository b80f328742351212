from django.apps import AppConfig


class SettlementConfig(AppConfig):
    """Settling each finished epoch once: rewards, fees, penalties, reports."""

    name = "apps.settlement"
    label = "settlement"

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """Agents, checker consensus and live network metrics."""

    name = "apps.monitoring"
    label = "monitoring"

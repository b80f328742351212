from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API (DRF): the same data and actions as the pages."""

    name = "apps.api"
    label = "api"

from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API's plumbing (DRF): root URLs, the exception handler, the
    JSON parser and the schema. Each app holds its own endpoints (``api.py``),
    with the same data and actions as its pages."""

    name = "apps.api"
    label = "api"

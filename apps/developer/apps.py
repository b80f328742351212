from django.apps import AppConfig


class DeveloperConfig(AppConfig):
    """For people who script: personal API tokens, exports and public badges."""

    name = "apps.developer"
    label = "developer"

    def ready(self):
        from . import schema  # noqa: F401  (the token's OpenAPI security scheme)

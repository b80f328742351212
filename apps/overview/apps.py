from django.apps import AppConfig


class OverviewConfig(AppConfig):
    """The landing page: the whole network at a glance, live."""

    name = "apps.overview"
    label = "overview"

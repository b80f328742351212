from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo network: seed data and the one command that runs it all."""

    name = "apps.demo"
    label = "demo"

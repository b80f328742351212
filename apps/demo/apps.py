from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo network: seed data, the simulated agents, renters and token
    holders, the fault drills' settler, and the one command that runs it all.
    Installed only in demo mode (see settings)."""

    name = "apps.demo"
    label = "demo"

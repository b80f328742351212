from django.apps import AppConfig


class StakingConfig(AppConfig):
    """Checker staking and delegation."""

    name = "apps.staking"
    label = "staking"

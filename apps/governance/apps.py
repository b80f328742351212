from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """Proposals, snapshot voting and the protocol parameters."""

    name = "apps.governance"
    label = "governance"

from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    """Renting GPUs: the catalogue, scheduler matching and rentals with escrow."""

    name = "apps.marketplace"
    label = "marketplace"

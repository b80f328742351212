"""The marketplace's public service functions in one place: views, the
API, settlement and management commands import from here."""

from .billing import judge, settle_rentals  # noqa: F401
from .matching import Preference, Requirements, match  # noqa: F401
from .onboarding import NodeSpec, OnboardingError, register_node, required_collateral  # noqa: F401
from .providers import ProviderError, take_offline, top_up_collateral, withdraw_collateral  # noqa: F401
from .rentals import (  # noqa: F401
    RentalError,
    end_rental,
    quote,
    rent,
    replace,
    top_up,
)

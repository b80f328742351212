from django.conf import settings
from django.utils.translation import gettext_lazy as _


def site(request):
    return {
        "DEMO_MODE": settings.DEMO_MODE,
        "nav": [
            (_("Marketplace"), "marketplace:index"),
            (_("Staking"), "staking:index"),
            (_("Governance"), "governance:index"),
            (_("Monitoring"), "monitoring:index"),
            (_("Settlement"), "settlement:index"),
            (_("Explorer"), "explorer:index"),
        ],
    }

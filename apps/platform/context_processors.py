from django.conf import settings


def site(request):
    return {
        "DEMO_MODE": settings.DEMO_MODE,
        "nav": [
            ("Marketplace", "marketplace:index"),
            ("Staking", "staking:index"),
            ("Governance", "governance:index"),
            ("Monitoring", "monitoring:index"),
            ("Settlement", "settlement:index"),
            ("Explorer", "explorer:index"),
        ],
    }

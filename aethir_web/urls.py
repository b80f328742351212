from django.contrib import admin
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from apps.explorer import queries


def home(request):
    areas = [
        ("Marketplace", "marketplace:index", "Browse and rent verified GPUs, or let the scheduler match one."),
        ("Staking", "staking:index", "Delegate ATH to a checker by its record; claim rewards."),
        ("Governance", "governance:index", "Proposals, votes and the protocol's parameters."),
        ("Monitoring", "monitoring:index", "Live GPU and checker metrics from the agents."),
        ("Explorer", "explorer:index", "Every ATH movement on a hash-chained public ledger."),
    ]
    return render(request, "home.html", {"summary": queries.summary(), "areas": areas})


@csrf_exempt  # stateless; also the baseline "minimal Django view" of bench/ingest.py
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("apps.accounts.urls")),
    path("explorer/", include("apps.explorer.urls")),
    path("marketplace/", include("apps.marketplace.urls")),
    path("staking/", include("apps.staking.urls")),
    path("governance/", include("apps.governance.urls")),
    path("monitoring/", include("apps.monitoring.urls")),
    path("settlement/", include("apps.settlement.urls")),
    path("api/", include("apps.api.urls")),
    path("admin/", admin.site.urls),
]

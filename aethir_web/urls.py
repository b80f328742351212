from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.i18n import JavaScriptCatalog

from apps.accounts.views import admin_login
from apps.overview.views import home


@csrf_exempt  # stateless; also the baseline "minimal Django view" of bench/ingest.py
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    # Early: agents post here many times a second, and each pattern tried
    # before a match costs (the heartbeats' URL took 90 us to resolve last).
    path("api/", include("apps.api.urls")),
    path("accounts/", include("apps.accounts.urls")),
    # The language switcher's POST target (set_language: stores the choice in a cookie).
    path("i18n/", include("django.conf.urls.i18n")),
    # The charts' labels in the page's language (window.gettext).
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("explorer/", include("apps.explorer.urls")),
    path("marketplace/", include("apps.marketplace.urls")),
    path("staking/", include("apps.staking.urls")),
    path("governance/", include("apps.governance.urls")),
    path("monitoring/", include("apps.monitoring.urls")),
    path("settlement/", include("apps.settlement.urls")),
    path("developer/", include("apps.developer.urls")),
    path("notifications/", include("apps.notifications.urls")),
    # Before the admin's own: its log-in answers 429 when the limits refuse.
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
]

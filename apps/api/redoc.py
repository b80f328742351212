"""The API reference (Redoc) with nothing fetched from other hosts: the
site's CSP allows only its own origin, and a network may run offline.
drf-spectacular's page links Google Fonts, and Redoc's bundle (from the
offline sidecar package) shows its maker's logo from their CDN; this page
uses the system's fonts and a bundle whose logo points at our own file."""

from functools import lru_cache

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.templatetags.static import static
from django.urls import reverse
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularRedocView

BUNDLE = "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@lru_cache(maxsize=1)
def _bundle() -> bytes:
    with open(finders.find(BUNDLE), encoding="utf-8") as f:
        return f.read().replace(REDOCLY_LOGO, static("img/favicon.svg")).encode()


@require_GET
def bundle(request):
    response = HttpResponse(_bundle(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response


class RedocView(SpectacularRedocView):
    template_name = "api/redoc.html"

    @staticmethod
    def _redoc_standalone():
        return reverse("api:redoc-bundle")


def page(**initkwargs):
    """The Redoc page under the site's CSP, plus the one thing Redoc needs
    beyond it: its search runs in a worker it creates from a blob."""
    policy = {**settings.SECURE_CSP, "worker-src": [CSP.SELF, "blob:"]}
    return csp_override(policy)(RedocView.as_view(**initkwargs))

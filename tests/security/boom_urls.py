"""The site's URLs plus one view that fails, for the error page tests."""

from django.urls import path

from aethir_web.urls import urlpatterns as site


def boom(request):
    raise RuntimeError("a failure with details nobody outside should see")


urlpatterns = [path("boom/", boom), *site]

"""Mounted at /api/developer/ by ``apps/api/urls.py``."""

from django.urls import path

from . import api

urlpatterns = [
    path("exports/<slug:kind>/", api.Export.as_view(), name="developer-export"),
]

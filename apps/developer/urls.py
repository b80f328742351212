from django.urls import path

from . import badges, views

app_name = "developer"

urlpatterns = [
    path("", views.developer, name="index"),
    path("tokens/<int:pk>/revoke/", views.revoke, name="revoke"),
    path("export/", views.export, name="export"),
    path("badges/nodes/<int:pk>.svg", badges.node_badge, name="node-badge"),
    path("badges/checkers/<int:pk>.svg", badges.checker_badge, name="checker-badge"),
]

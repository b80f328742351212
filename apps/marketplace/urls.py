from django.urls import path

from . import views

app_name = "marketplace"

urlpatterns = [
    path("", views.index, name="index"),
    path("match/", views.match, name="match"),
    path("nodes/<int:pk>/", views.node_detail, name="node"),
    path("nodes/<int:pk>/rent/", views.rent, name="rent"),
    path("rentals/", views.my_rentals, name="rentals"),
    path("rentals/<int:pk>/", views.rental_detail, name="rental"),
    path("rentals/<int:pk>/escrow/", views.rental_escrow, name="rental-escrow"),
    path("rentals/<int:pk>/end/", views.rental_end, name="rental-end"),
    path("rentals/<int:pk>/top-up/", views.rental_top_up, name="rental-top-up"),
    path("rentals/<int:pk>/replace/", views.rental_replace, name="rental-replace"),
    path("provide/", views.provider_dashboard, name="provider"),
    path("provide/new/", views.provider_new, name="provider-new"),
    path("provide/new/collateral/", views.provider_collateral_preview, name="provider-preview"),
    path("provide/nodes/<int:pk>/", views.provider_node, name="provider-node"),
    path("provide/nodes/<int:pk>/token/", views.provider_token, name="provider-token"),
    path("provide/nodes/<int:pk>/collateral/", views.provider_top_up, name="provider-top-up"),
    path("provide/nodes/<int:pk>/withdraw/", views.provider_withdraw, name="provider-withdraw"),
    path("provide/nodes/<int:pk>/offline/", views.provider_offline, name="provider-offline"),
]

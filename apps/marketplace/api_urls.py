"""Mounted at /api/marketplace/ by ``apps/api/urls.py``."""

from django.urls import path

from . import api

urlpatterns = [
    path("nodes/", api.NodeList.as_view(), name="marketplace-nodes"),
    path("nodes/<int:pk>/", api.NodeDetail.as_view(), name="marketplace-node"),
    path("match/", api.Match.as_view(), name="marketplace-match"),
    path("rentals/", api.RentalList.as_view(), name="marketplace-rentals"),
    path("rentals/<int:pk>/", api.RentalDetail.as_view(), name="marketplace-rental"),
    path("rentals/<int:pk>/end/", api.RentalEnd.as_view(), name="marketplace-rental-end"),
    path("rentals/<int:pk>/top-up/", api.RentalTopUp.as_view(), name="marketplace-rental-top-up"),
    path("rentals/<int:pk>/replace/", api.RentalReplace.as_view(), name="marketplace-rental-replace"),
    path("provider/nodes/", api.ProviderNodeList.as_view(), name="marketplace-provider-nodes"),
    path("provider/nodes/<int:pk>/", api.ProviderNodeDetail.as_view(), name="marketplace-provider-node"),
    path("provider/nodes/<int:pk>/collateral/", api.ProviderTopUp.as_view(), name="marketplace-provider-top-up"),
    path("provider/nodes/<int:pk>/offline/", api.ProviderOffline.as_view(), name="marketplace-provider-offline"),
    path("provider/nodes/<int:pk>/withdraw/", api.ProviderWithdraw.as_view(), name="marketplace-provider-withdraw"),
    path("provider/earnings/", api.ProviderEarnings.as_view(), name="marketplace-provider-earnings"),
]

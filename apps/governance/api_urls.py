"""Mounted at /api/governance/ by ``apps/api/urls.py``."""

from django.urls import path

from . import api

urlpatterns = [
    path("proposals/", api.ProposalList.as_view(), name="governance-proposals"),
    path("proposals/<int:pk>/", api.ProposalDetail.as_view(), name="governance-proposal"),
    path("proposals/<int:pk>/votes/", api.ProposalVotes.as_view(), name="governance-votes"),
    path("proposals/<int:pk>/vote/", api.MyVote.as_view(), name="governance-vote"),
]

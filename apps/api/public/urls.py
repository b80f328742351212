from django.urls import path

from . import views as v

urlpatterns = [
    path("parameters/", v.Parameters.as_view(), name="public-parameters"),
    path("parameters/changes/", v.ParameterChanges.as_view(), name="public-parameter-changes"),
    path("gpu-models/", v.GpuModels.as_view(), name="public-gpu-models"),
    path("regions/", v.Regions.as_view(), name="public-regions"),
    path("nodes/", v.Nodes.as_view(), name="public-nodes"),
    path("checkers/", v.Checkers.as_view(), name="public-checkers"),
    path("checker-keys/", v.CheckerKeys.as_view(), name="public-checker-keys"),
    path("assignment-rounds/", v.AssignmentRounds.as_view(), name="public-assignment-rounds"),
    path("assignments/", v.Assignments.as_view(), name="public-assignments"),
    path("reports/", v.Reports.as_view(), name="public-reports"),
    path("consensus/", v.Consensus.as_view(), name="public-consensus"),
    path("consensus/epochs/", v.ConsensusEpochs.as_view(), name="public-consensus-epochs"),
    path("checker-epochs/", v.CheckerEpochs.as_view(), name="public-checker-epochs"),
    path("settlements/", v.Settlements.as_view(), name="public-settlements"),
    path("settlement-lines/", v.SettlementLines.as_view(), name="public-settlement-lines"),
    path("incidents/", v.Incidents.as_view(), name="public-incidents"),
    path("commission-changes/", v.CommissionChanges.as_view(), name="public-commission-changes"),
    path("jail-events/", v.JailEvents.as_view(), name="public-jail-events"),
    path("node-pauses/", v.NodePauses.as_view(), name="public-node-pauses"),
    path("reward-periods/", v.RewardPeriods.as_view(), name="public-reward-periods"),
    path("redelegations/", v.Redelegations.as_view(), name="public-redelegations"),
    path("transactions/", v.Transactions.as_view(), name="public-transactions"),
    path("rental-charges/", v.RentalCharges.as_view(), name="public-rental-charges"),
    path("rentals/", v.Rentals.as_view(), name="public-rentals"),
    path("slashes/", v.Slashes.as_view(), name="public-slashes"),
    path("proposals/", v.Proposals.as_view(), name="public-proposals"),
    path("votes/", v.Votes.as_view(), name="public-votes"),
]

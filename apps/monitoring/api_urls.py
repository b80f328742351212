from django.urls import path

from . import api, challenge_api

urlpatterns = [
    path("agent/me/", api.AgentMe.as_view(), name="agent-me"),
    path("agent/heartbeats/", api.AgentHeartbeats.as_view(), name="agent-heartbeats"),
    path("agent/key/", api.AgentKey.as_view(), name="agent-key"),
    path("agent/assignments/", api.AgentAssignments.as_view(), name="agent-assignments"),
    path("agent/reports/", api.AgentReports.as_view(), name="agent-reports"),
    path("agent/reports/batch/", api.AgentReportBatch.as_view(), name="agent-reports-batch"),
    path("agent/leases/", api.AgentLeases.as_view(), name="agent-leases"),
    path("agent/leases/status/", api.AgentLeaseStatus.as_view(), name="agent-lease-status"),
    path("monitoring/overview/", api.OverviewView.as_view(), name="monitoring-overview"),
    path("monitoring/nodes/", api.NodeList.as_view(), name="monitoring-nodes"),
    path("monitoring/nodes/<int:pk>/", api.NodeDetail.as_view(), name="monitoring-node"),
    path("monitoring/nodes/<int:pk>/epochs/", api.NodeEpochs.as_view(), name="monitoring-node-epochs"),
    path("monitoring/checkers/<int:pk>/epochs/", api.CheckerEpochs.as_view(), name="monitoring-checker-epochs"),
    path("monitoring/assignments/<int:epoch>/verify/", api.AssignmentVerify.as_view(), name="assignments-verify"),
    path("monitoring/challenges/", challenge_api.ChallengeList.as_view(), name="monitoring-challenges"),
    path("monitoring/challenges/<int:pk>/", challenge_api.ChallengeDetail.as_view(), name="monitoring-challenge"),
]

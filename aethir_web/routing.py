"""WebSocket routes: every live page subscribes through one of these."""

from django.urls import path

from apps.explorer.consumers import LedgerFeedConsumer
from apps.governance.consumers import ProposalConsumer
from apps.marketplace.consumers import RentalConsumer
from apps.monitoring import consumers as monitoring
from apps.notifications.consumers import BellConsumer
from apps.overview.consumers import HomeConsumer

websocket_urlpatterns = [
    path("ws/home/", HomeConsumer.as_asgi()),
    path("ws/ledger/", LedgerFeedConsumer.as_asgi()),
    path("ws/governance/<int:pk>/", ProposalConsumer.as_asgi()),
    path("ws/monitoring/", monitoring.OverviewConsumer.as_asgi()),
    path("ws/monitoring/nodes/<int:pk>/", monitoring.NodeConsumer.as_asgi()),
    path("ws/monitoring/checkers/<int:pk>/", monitoring.CheckerConsumer.as_asgi()),
    path("ws/rentals/<int:pk>/", RentalConsumer.as_asgi()),
    path("ws/notifications/", BellConsumer.as_asgi()),
]

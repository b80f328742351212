"""WebSocket routes: every live page subscribes through one of these."""

from django.urls import path

from apps.explorer.consumers import LedgerFeedConsumer

websocket_urlpatterns = [
    path("ws/ledger/", LedgerFeedConsumer.as_asgi()),
]

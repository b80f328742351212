"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aethir_web.settings")
django.setup(set_prefix=False)  # loads apps before the consumers import models

from apps.platform.asgi_handler import ASGIHandler  # noqa: E402

django_asgi_app = ASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from aethir_web.routing import websocket_urlpatterns  # noqa: E402
from apps.platform.relay import StartRelay  # noqa: E402

# StartRelay: the outbox relay that feeds live pages starts with the first
# request, on the server's event loop (see apps/platform/relay.py).
application = StartRelay(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
)

"""Agent authentication: ``Authorization: Agent <token>``.

A token acts for exactly one GPU node or one checker node; the permission
classes below make a node token useless on checker endpoints and the other
way round, and every view reads the node or checker from the token, never
from the request body.
"""

from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from apps.core.models import AgentToken, hash_token

KEYWORD = "Agent"
TOUCH_EVERY = timedelta(minutes=1)


class AgentTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace").split()
        if not header or header[0] != KEYWORD:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send 'Authorization: Agent <token>'.")
        token = (
            AgentToken.objects.select_related("node", "node__gpu_model", "checker")
            .filter(key_hash=hash_token(header[1]))
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown agent token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
            AgentToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return AnonymousUser(), token

    def authenticate_header(self, request):
        return KEYWORD


class IsNodeAgent(permissions.BasePermission):
    message = "This endpoint needs a provider agent's token."

    def has_permission(self, request, view):
        return isinstance(request.auth, AgentToken) and request.auth.node_id is not None


class IsCheckerAgent(permissions.BasePermission):
    message = "This endpoint needs a checker agent's token."

    def has_permission(self, request, view):
        return isinstance(request.auth, AgentToken) and request.auth.checker_id is not None


class AgentTokenScheme(OpenApiAuthenticationExtension):
    """Documents the agent scheme in the OpenAPI schema."""

    target_class = "apps.monitoring.auth.AgentTokenAuthentication"
    name = "agentToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Agent <token>`: the token shown once when the node or checker was registered.",
        }

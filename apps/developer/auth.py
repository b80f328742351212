"""``Authorization: Bearer <personal token>`` on every API route, within
the token's scopes and its own rate limit.

The scope check sits in the authentication itself, not in a permission
class, so no view's own ``permission_classes`` can leave it out. A bearer
value that is not a personal token is left to other schemes."""

import logging

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions

from apps.platform import ratelimit, throttles

from . import scopes, tokens
from .models import hash_key

log = logging.getLogger(__name__)
KEYWORD = "Bearer"


def _throttle(token) -> None:
    limit, period = throttles.parse_rate(settings.API_TOKEN_RATE)
    allowed, retry = ratelimit.hit("api-token", str(token.pk), limit, period)
    if not allowed:
        raise exceptions.Throttled(
            wait=retry,
            detail=_("This token made more than %(limit)d requests in %(period)d seconds.")
            % {"limit": limit, "period": period},
        )


def bearer_token(request) -> str | None:
    """The personal token ``request`` carries, or None (none, or another
    scheme's). Raises AuthenticationFailed on a malformed Bearer header."""
    header = authentication.get_authorization_header(request).split()
    if not header or header[0].decode(errors="replace").lower() != KEYWORD.lower():
        return None
    if len(header) != 2:
        raise exceptions.AuthenticationFailed(_("Send 'Authorization: Bearer <token>'."))
    raw = header[1].decode(errors="replace")
    return raw if tokens.looks_like_token(raw) else None


def usable_token(raw: str):
    """The token ``raw`` is, or AuthenticationFailed when it is unknown, revoked or expired."""
    token = tokens.check(raw)
    if token is None:
        # Never the token itself in a log line: its public prefix names it.
        log.info("refused API token %s", raw[len(tokens.PREFIX) : len(tokens.PREFIX) + 8])
        raise exceptions.AuthenticationFailed(_("This token is unknown, revoked or expired."))
    return token


class PersonalTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        raw = bearer_token(request)
        if raw is None:
            return None
        # Already looked up for this request by ``middleware.RefuseUnusableToken``.
        token = getattr(request._request, "personal_token", None)
        if token is None or token.key_hash != hash_key(raw):
            token = usable_token(raw)
        needed = scopes.required_scope(request.path, request.method)
        if needed is None:
            raise exceptions.PermissionDenied(_("Personal API tokens cannot be used on this route."))
        if needed not in token.scopes:
            raise exceptions.PermissionDenied(
                _("This token lacks the '%(scope)s' scope this request needs.") % {"scope": needed}
            )
        _throttle(token)
        return token.user, token

    def authenticate_header(self, request):
        # A refused token answers 401 with this challenge; a request without
        # one keeps the API's usual 403 (DRF asks the first class only).
        header = authentication.get_authorization_header(request).split()
        if header and header[0].decode(errors="replace").lower() == KEYWORD.lower():
            return KEYWORD
        return None

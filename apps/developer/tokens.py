"""Issuing, checking and revoking personal API tokens.

A token is ``ath_<prefix>_<secret>``: the prefix names it in lists (and in
logs, where the whole token never goes); only a digest of the whole is
stored, so the token is shown once, when it is made."""

import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.errors import NotFound, Refused

from .models import ApiToken, Scope, hash_key

PREFIX = "ath_"
MAX_TOKENS = 50
MAX_DAYS = 3650
TOUCH_EVERY = timedelta(minutes=1)


def looks_like_token(raw: str) -> bool:
    return raw.startswith(PREFIX)


def issue(user, name: str, scopes, expires_in_days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns it and the raw token (shown once)."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise Refused(_("Give the token a name of at most 80 characters."), field="name")
    scopes = sorted(set(scopes or ()))
    if not scopes:
        raise Refused(_("Choose at least one scope."), field="scopes")
    unknown = [s for s in scopes if s not in Scope.values]
    if unknown:
        raise Refused(_("Unknown scope: %(scope)s.") % {"scope": unknown[0]}, field="scopes")
    expires_at = None
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_DAYS:
            raise Refused(_("Expiry must be between 1 and %(max)d days.") % {"max": MAX_DAYS}, field="expires_in_days")
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    with transaction.atomic():
        if ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() >= MAX_TOKENS:
            raise Refused(_("You have %(max)d active tokens: revoke one first.") % {"max": MAX_TOKENS})
        prefix = secrets.token_hex(4)
        raw = f"{PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
        token = ApiToken.objects.create(
            user=user, name=name, prefix=prefix, key_hash=hash_key(raw), scopes=scopes, expires_at=expires_at
        )
    return token, raw


def revoke(user, token_id: int) -> ApiToken:
    """Revoke one of ``user``'s tokens: refused from the next request on."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(user=user, pk=token_id).first()
        if token is None:
            raise NotFound(_("No such token."))
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
    return token


def check(raw: str) -> ApiToken | None:
    """The usable token ``raw`` is, or None (unknown, revoked or expired).
    Records its use at most once a minute."""
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_key(raw)).first()
    now = timezone.now()
    if token is None or not token.usable(now) or not token.user.is_active:
        return None
    if token.last_used_at is None or token.last_used_at < now - TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def for_user(user):
    return ApiToken.objects.filter(user=user)

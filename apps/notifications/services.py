"""Recording notifications and queueing their deliveries; people's
preferences and webhook endpoints.

``notify`` only writes rows (the notification, one delivery per e-mail
address or endpoint, the bell's live hint) in the caller's transaction;
nothing is sent from it. The worker (``run_notifications``) sends the
queue later, outside any request and any settlement."""

import secrets
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.errors import NotFound, Refused

from . import live, targets
from .models import Channel, Delivery, Event, Notification, Preference, WebhookEndpoint

DEFAULTS = {Channel.IN_APP: True, Channel.EMAIL: False, Channel.WEBHOOK: True}
# Telling someone their webhook was disabled by webhook would go nowhere.
NOT_BY_WEBHOOK = {Event.WEBHOOK_DISABLED}
MAX_ENDPOINTS = 10


def channels_for(user_ids: Iterable[int], event: str) -> dict[int, set[str]]:
    """The channels each person wants ``event`` on (defaults where they did not choose)."""
    user_ids = list(user_ids)
    chosen: dict[int, dict[str, bool]] = {u: {} for u in user_ids}
    for user_id, channel, enabled in Preference.objects.filter(user_id__in=user_ids, event=event).values_list(
        "user_id", "channel", "enabled"
    ):
        chosen[user_id][channel] = enabled
    out = {}
    for u, mine in chosen.items():
        out[u] = {c for c in Channel.values if mine.get(c, DEFAULTS[c])}
        if event in NOT_BY_WEBHOOK:
            out[u].discard(Channel.WEBHOOK)
    return out


def notify(user_ids: Iterable[int], event: str, key: str, title: str, body: str = "", url: str = "", data=None) -> int:
    """Record ``event`` once per person and ``key``; queue its e-mails and
    webhook calls. Returns how many people were newly notified."""
    user_ids = {u for u in user_ids if u}
    if not user_ids:
        return 0
    with transaction.atomic():
        done = set(Notification.objects.filter(user_id__in=user_ids, key=key).values_list("user_id", flat=True))
        new = sorted(user_ids - done)
        if not new:
            return 0
        wanted = channels_for(new, event)
        rows = [
            Notification(
                user_id=u,
                event=event,
                key=key,
                title=title[:200],
                body=body,
                url=url,
                data=data or {},
                in_app=Channel.IN_APP in wanted[u],
            )
            for u in new
        ]
        try:
            with transaction.atomic():
                Notification.objects.bulk_create(rows)
        except IntegrityError:  # another worker got there first: keep the ones that are new
            rows = [r for r in rows if not Notification.objects.filter(user_id=r.user_id, key=key).exists()]
            for r in rows:
                r.save()
        by_user = {r.user_id: r for r in rows}
        now = timezone.now()
        deliveries = []
        emailed = [u for u in by_user if Channel.EMAIL in wanted[u]]
        for u in get_user_model().objects.filter(pk__in=emailed).exclude(email="").values_list("pk", flat=True):
            deliveries.append(Delivery(notification=by_user[u], channel=Channel.EMAIL, next_attempt_at=now))
        hooked = [u for u in by_user if Channel.WEBHOOK in wanted[u]]
        for endpoint in WebhookEndpoint.objects.filter(user_id__in=hooked, active=True):
            deliveries.append(
                Delivery(
                    notification=by_user[endpoint.user_id],
                    channel=Channel.WEBHOOK,
                    endpoint=endpoint,
                    next_attempt_at=now,
                )
            )
        Delivery.objects.bulk_create(deliveries)
        live.changed(u for u, r in by_user.items() if r.in_app)
    return len(rows)


# --- preferences --------------------------------------------------------------


def preferences(user) -> dict[tuple[str, str], bool]:
    mine = {(p.event, p.channel): p.enabled for p in Preference.objects.filter(user=user)}
    return {(e, c): mine.get((e, c), DEFAULTS[c]) for e in Event.values for c in Channel.values}


def set_preferences(user, enabled: set[tuple[str, str]]) -> None:
    """Store ``user``'s choice: exactly the (event, channel) pairs in ``enabled`` are on."""
    with transaction.atomic():
        Preference.objects.filter(user=user).delete()
        Preference.objects.bulk_create(
            Preference(user=user, event=e, channel=c, enabled=(e, c) in enabled)
            for e in Event.values
            for c in Channel.values
        )


# --- webhook endpoints ------------------------------------------------------------


def add_endpoint(user, url: str, description: str = "") -> WebhookEndpoint:
    target = targets.check(url)
    with transaction.atomic():
        if WebhookEndpoint.objects.filter(user=user).count() >= MAX_ENDPOINTS:
            raise Refused(_("You have %(max)d endpoints: remove one first.") % {"max": MAX_ENDPOINTS})
        return WebhookEndpoint.objects.create(
            user=user, url=target.endpoint, description=(description or "")[:100], secret=secrets.token_hex(32)
        )


def endpoint_of(user, pk: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(user=user, pk=pk).first()
    if endpoint is None:
        raise NotFound(_("No such endpoint."))
    return endpoint


def remove_endpoint(user, pk: int) -> None:
    endpoint_of(user, pk).delete()


def enable_endpoint(user, pk: int) -> WebhookEndpoint:
    endpoint = endpoint_of(user, pk)
    targets.check(endpoint.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=True, failures=0, disabled_reason="")
    endpoint.refresh_from_db()
    return endpoint


def set_email(user, email: str) -> None:
    email = (email or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise Refused(_("Enter a valid e-mail address."), field="email") from None
    user.email = email
    user.save(update_fields=["email"])


def mark_read(user) -> None:
    if Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now()):
        live.changed([user.pk])


def unread_count(user) -> int:
    return Notification.objects.filter(user=user, in_app=True, read_at__isnull=True).count()

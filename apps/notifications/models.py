"""Notifications: what happened to something a person owns or follows, the
channels they chose for each kind of event, their webhook endpoints, and a
durable queue of deliveries with a log of every attempt."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Event(models.TextChoices):
    NODE_DEGRADED = "node.degraded", _("Your node was degraded")
    NODE_SUSPENDED = "node.suspended", _("Your node was suspended")
    NODE_SLASHED = "node.slashed", _("Your node's collateral was slashed")
    NODE_ONLINE = "node.online", _("Your node is back online")
    CHECKER_JAILED = "checker.jailed", _("A checker you stake with was jailed")
    CHECKER_SLASHED = "checker.slashed", _("A checker you stake with was slashed")
    CHECKER_COMMISSION = "checker.commission_changed", _("A checker you stake with changed its commission")
    ESCROW_LOW = "rental.escrow_low", _("A rental's escrow is running out")
    RENTAL_FAILED_OVER = "rental.failed_over", _("A rental moved to another node")
    CONTAINER_EXITED = "rental.container_exited", _("A rental's container stopped")
    PROPOSAL_OPENED = "proposal.opened", _("A proposal opened for voting")
    PROPOSAL_ENDING = "proposal.ending", _("A vote is closing soon")
    PROPOSAL_DECIDED = "proposal.decided", _("A proposal passed or failed")
    UNBONDING_MATURED = "staking.unbonding_matured", _("Unbonded stake is available")
    WEBHOOK_DISABLED = "webhook.disabled", _("A webhook endpoint was disabled")


class Channel(models.TextChoices):
    IN_APP = "in_app", _("In the app")
    EMAIL = "email", _("E-mail")
    WEBHOOK = "webhook", _("Webhooks")


class Notification(models.Model):
    """One event for one person; ``key`` makes each event happen once
    however often its detector looks."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=40, choices=Event.choices)
    key = models.CharField(max_length=200)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")
    url = models.CharField(max_length=300, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    in_app = models.BooleanField(default=True, help_text="shown under the bell")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="notification_once_per_key")]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self):
        return f"{self.user_id}: {self.title}"


class Preference(models.Model):
    """A person's choice for one event on one channel (absent: the default)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=40, choices=Event.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    enabled = models.BooleanField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "event", "channel"], name="preference_unique")]


class WebhookEndpoint(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.CharField(max_length=500)
    description = models.CharField(max_length=100, blank=True, default="")
    # Signs every delivery; shown to its owner, who needs it to check them.
    secret = models.CharField(max_length=64)
    active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    failures = models.PositiveIntegerField(default=0, help_text="failed attempts in a row")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return self.url


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class Delivery(models.Model):
    """One notification to one e-mail address or webhook endpoint: a row of
    the durable queue, written with the notification, sent by the worker."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    endpoint = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status = models.PositiveIntegerField(null=True, blank=True, help_text="HTTP status of the last attempt")
    last_error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]


class Attempt(models.Model):
    """The delivery log: every try, with the receiver's answer."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]


class Cursor(models.Model):
    """How far a detector has read its source (an id), and what it has seen."""

    name = models.CharField(max_length=60, unique=True)
    position = models.BigIntegerField(default=0)
    state = models.JSONField(default=dict, blank=True)

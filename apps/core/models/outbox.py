"""The transactional outbox of live-page hints (``apps/core/outbox.py``
writes it, ``apps/platform/relay.py`` publishes it).

A hint is a row written in the same database transaction as the change it
announces, so it exists exactly when the change does, whichever process made
it; the web server's relay reads the rows in id order and sends each to its
Channels group."""

from django.db import models
from django.utils import timezone


class OutboxEvent(models.Model):
    """One message for one Channels group. No index but the primary key: the
    relay reads by id, and pruning deletes by id under a cursor (the time
    test only trims that range), so every insert stays as cheap as it can."""

    created_at = models.DateTimeField(default=timezone.now)
    group = models.CharField(max_length=100)
    message = models.JSONField()

    def __str__(self):
        return f"#{self.pk} -> {self.group}"


class OutboxCursor(models.Model):
    """How far a relay has published: every event at or below ``position``
    has been sent (or given up as a gap, see the relay). On a shared channel
    layer one row, ``shared``, is also the lease that elects the single relay
    allowed to publish (``holder`` until ``expires_at``); on the in-memory
    layer each web process keeps a row of its own."""

    name = models.CharField(max_length=120, unique=True)
    position = models.BigIntegerField(default=0)
    holder = models.CharField(max_length=120, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.name} at #{self.position}"

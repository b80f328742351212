"""Rentals and what settles them.

``Rental``          one renter holding one whole node for a span of epochs,
                    its price locked at the start and its escrow in the
                    renter's own ``escrowed`` bucket;
``RentalCharge``    one settled epoch of a rental: served (released to the
                    provider minus the protocol fee) or failed (refunded in
                    full plus an SLA credit from the provider's collateral);
``CollateralSlash`` collateral taken from a provider, with its reason;
``RentalSettlement`` marks an epoch's rentals as settled (idempotency);
``Workload``        what the rental runs on the node (image, command,
                    environment, ports) and the state its node's agent last
                    reported (endpoints, exit code, log tail);
``WorkloadEvent``   the workload's timeline: each state it went through, on
                    which node (a failover shows as a move).

Money never lives in these tables: they explain ledger postings (each row
keeps the height of its transaction) and let pages show the same numbers
the ledger holds. A rental's escrow left is
``escrow_total - released - refunded - carried_out``.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.core.models import GpuNode, Region


class RentalMode(models.TextChoices):
    RESERVED = "reserved", _("Reserved (prepaid for a fixed time)")
    ON_DEMAND = "on_demand", _("On-demand (top up, stop any time)")


class RentalStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    ENDED = "ended", _("Ended")
    REPLACED = "replaced", _("Moved to a replacement")


class Rental(models.Model):
    renter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="rentals")
    node = models.ForeignKey(GpuNode, on_delete=models.PROTECT, related_name="rentals")
    # v1 rents whole nodes; the count is kept so history stays true if a
    # node is later re-registered with another count.
    gpu_count = models.PositiveSmallIntegerField()
    mode = models.CharField(max_length=16, choices=RentalMode.choices)
    image = models.CharField(max_length=255, help_text="container image the node runs for the renter")
    renter_region = models.ForeignKey(Region, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    auto_replace = models.BooleanField(default=False, help_text="move to a replacement automatically if the node fails")

    # Billed epochs are [start_epoch, end_epoch). On-demand rentals extend
    # end_epoch as their escrow is topped up.
    start_epoch = models.BigIntegerField()
    end_epoch = models.BigIntegerField()
    settled_through = models.BigIntegerField(help_text="last epoch settled (start_epoch - 1 before any)")

    # Locked at the start: later price changes on the node do not apply.
    price_per_gpu_hour = models.BigIntegerField()
    epoch_seconds = models.PositiveIntegerField()
    price_per_epoch = models.BigIntegerField()

    escrow_total = models.BigIntegerField(default=0, help_text="all escrow posted for this rental")
    released = models.BigIntegerField(default=0, help_text="served epochs paid out (provider + protocol fee)")
    refunded = models.BigIntegerField(default=0, help_text="returned to the renter")
    carried_out = models.BigIntegerField(default=0, help_text="handed to the replacement rental")

    status = models.CharField(max_length=16, choices=RentalStatus.choices, default=RentalStatus.ACTIVE, db_index=True)
    end_reason = models.CharField(max_length=200, blank=True, default="")
    replaces = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by")
    last_failure_epoch = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # The database itself refuses a second renter on a node.
            models.UniqueConstraint(fields=["node"], condition=Q(status="active"), name="one_active_rental_per_node"),
            models.CheckConstraint(
                condition=Q(escrow_total__gte=F("released") + F("refunded") + F("carried_out")),
                name="rental_escrow_not_negative",
            ),
            models.CheckConstraint(condition=Q(end_epoch__gte=F("start_epoch")), name="rental_end_after_start"),
            models.CheckConstraint(condition=Q(price_per_epoch__gte=0), name="rental_price_not_negative"),
        ]
        indexes = [
            models.Index(fields=["renter", "status"]),
            models.Index(fields=["start_epoch", "end_epoch"]),
        ]

    def __str__(self):
        return f"Rental #{self.pk} of {self.node.name}"

    def get_absolute_url(self):
        return reverse("marketplace:rental", args=[self.pk])

    @property
    def escrow_left(self) -> int:
        return self.escrow_total - self.released - self.refunded - self.carried_out

    @property
    def epochs_total(self) -> int:
        return self.end_epoch - self.start_epoch

    @property
    def is_active(self) -> bool:
        return self.status == RentalStatus.ACTIVE


class ChargeOutcome(models.TextChoices):
    SERVED = "served", _("Served")
    UNVERIFIED = "unverified", _("Served (no checker consensus)")
    FAILED = "failed", _("Node failed: refunded")


class RentalCharge(models.Model):
    rental = models.ForeignKey(Rental, on_delete=models.PROTECT, related_name="charges")
    epoch = models.BigIntegerField()
    node = models.ForeignKey(GpuNode, on_delete=models.PROTECT, related_name="rental_charges")
    provider = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="rental_earnings")
    outcome = models.CharField(max_length=16, choices=ChargeOutcome.choices)
    charge = models.BigIntegerField(help_text="the epoch's fee at the locked price")
    fee = models.BigIntegerField(default=0, help_text="protocol fee to the community pool")
    provider_amount = models.BigIntegerField(default=0, help_text="released to the provider")
    refunded = models.BigIntegerField(default=0, help_text="fee returned to the renter (failed epoch)")
    sla_credit = models.BigIntegerField(default=0, help_text="paid to the renter from the provider's collateral")
    reason = models.CharField(max_length=200, blank=True, default="")
    uptime_ppm = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    workload_ppm = models.PositiveIntegerField(
        null=True, blank=True, help_text="share of checker probes that found the rental's workload answering"
    )
    tx_height = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-epoch", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rental", "epoch"], name="one_charge_per_rental_epoch"),
            models.CheckConstraint(
                condition=Q(fee__gte=0) & Q(provider_amount__gte=0) & Q(refunded__gte=0) & Q(sla_credit__gte=0),
                name="charge_parts_not_negative",
            ),
        ]
        indexes = [
            models.Index(fields=["provider", "epoch"]),
            models.Index(fields=["node", "epoch"]),
        ]


class SlashKind(models.TextChoices):
    DOWNTIME = "downtime", _("Downtime while serving a rental")
    SLA_CREDIT = "sla_credit", _("SLA credit to the renter")


class CollateralSlash(models.Model):
    node = models.ForeignKey(GpuNode, on_delete=models.PROTECT, related_name="collateral_slashes")
    provider = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="collateral_slashes")
    epoch = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=SlashKind.choices)
    amount = models.BigIntegerField()
    reason = models.CharField(max_length=300)
    rental = models.ForeignKey(Rental, null=True, blank=True, on_delete=models.PROTECT, related_name="slashes")
    tx_height = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-epoch", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="slash_amount_positive")]
        indexes = [models.Index(fields=["provider", "epoch"])]


class RentalSettlement(models.Model):
    """One row per settled epoch: running ``settle_rentals`` twice pays once."""

    epoch = models.BigIntegerField(unique=True)
    rentals = models.PositiveIntegerField(default=0)
    rental_fees = models.BigIntegerField(default=0)
    protocol_fees = models.BigIntegerField(default=0)
    refunds = models.BigIntegerField(default=0)
    sla_credits = models.BigIntegerField(default=0)
    collateral_slashed = models.BigIntegerField(default=0)
    replacements = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-epoch"]

    def totals(self) -> dict:
        return {
            "rentals": self.rentals,
            "rental_fees": self.rental_fees,
            "protocol_fees": self.protocol_fees,
            "refunds": self.refunds,
            "sla_credits": self.sla_credits,
            "collateral_slashed": self.collateral_slashed,
            "replacements": self.replacements,
        }


class WorkloadState(models.TextChoices):
    # Before the node's agent has said anything about it.
    SCHEDULED = "scheduled", _("Scheduled")
    PULLING = "pulling", _("Pulling the image")
    STARTING = "starting", _("Starting")
    RUNNING = "running", _("Running")
    EXITED = "exited", _("Exited")
    FAILED = "failed", _("Failed")
    # The agent stopped and removed it (the rental ended or moved).
    REMOVED = "removed", _("Removed")


class Workload(models.Model):
    """The container a rental runs: the renter's request, and what the
    node's agent last reported about it. Secret environment values are
    stored for the node's agent only: no page, API answer or log shows them
    (see ``apps.marketplace.workloads.public_env``)."""

    rental = models.OneToOneField(Rental, on_delete=models.CASCADE, related_name="workload")
    template = models.CharField(max_length=40, blank=True, default="", help_text="catalogue template, if one was used")
    command = models.JSONField(null=True, blank=True, help_text="argv list; null runs the image's own command")
    env = models.JSONField(default=list, help_text='[{"name", "value", "secret"}]')
    ports = models.JSONField(default=list, help_text="container TCP ports to expose")

    state = models.CharField(max_length=16, choices=WorkloadState.choices, default=WorkloadState.SCHEDULED)
    exit_code = models.IntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True, default="")
    endpoints = models.JSONField(default=dict, help_text='{"container port": "host:port"}')
    log_tail = models.TextField(blank=True, default="")
    state_changed_at = models.DateTimeField(auto_now_add=True)
    reported_at = models.DateTimeField(null=True, blank=True, help_text="the agent's latest report")

    def __str__(self):
        return f"Workload of rental #{self.rental_id}"


class WorkloadEvent(models.Model):
    rental = models.ForeignKey(Rental, on_delete=models.CASCADE, related_name="workload_events")
    node = models.ForeignKey(GpuNode, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=WorkloadState.choices)
    detail = models.CharField(max_length=500, blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["rental", "at"])]


class NodePause(models.Model):
    """A node paused (its collateral fell below the requirement, so it takes
    no rentals and earns no capacity reward) or resumed (topped up again):
    kept so the public can tell which epochs a node could earn in."""

    node = models.ForeignKey(GpuNode, on_delete=models.CASCADE, related_name="pauses")
    epoch = models.BigIntegerField()
    paused = models.BooleanField(help_text="true: paused; false: resumed")
    reason = models.CharField(max_length=200)
    collateral = models.BigIntegerField(help_text="uATH after the change")
    required_collateral = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["node", "epoch"]), models.Index(fields=["epoch"])]

"""The network: regions, the GPU catalogue, provider GPU nodes, checker
nodes and the tokens their agents authenticate with.

Feature apps add their own tables (rentals, delegations, proposals,
telemetry) that point at these; these rows are the shared vocabulary.
"""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Region(models.Model):
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=80)
    # Coordinates for great-circle proximity (degrees, 5 decimals ~ 1 m).
    latitude = models.DecimalField(max_digits=8, decimal_places=5)
    longitude = models.DecimalField(max_digits=8, decimal_places=5)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class GpuModel(models.Model):
    """A catalogue entry. ``stake_weight`` (Aethir's per-spec "K-value")
    sets the collateral a GPU requires and what a slash takes;
    ``capacity_weight`` sets its share of provider emission;
    ``perf_score`` is its relative throughput for the scheduler."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80, unique=True)
    vram_gb = models.PositiveIntegerField()
    stake_weight = models.PositiveIntegerField()
    capacity_weight = models.PositiveIntegerField()
    perf_score = models.PositiveIntegerField(default=100)
    # Dense float32 throughput of one GPU, from the vendor's data sheet: the
    # compute challenge's deadline is derived from it (docs/challenges.md).
    fp32_tflops = models.DecimalField(max_digits=7, decimal_places=1, default=0)

    class Meta:
        ordering = ["-perf_score", "name"]

    def __str__(self):
        return self.name


class NodeStatus(models.TextChoices):
    PENDING = "pending", _("Pending verification")
    ONLINE = "online", _("Online")
    DEGRADED = "degraded", _("Degraded")
    SUSPENDED = "suspended", _("Suspended")
    OFFLINE = "offline", _("Offline")


# Nodes that checkers are assigned to each epoch (docs/rules.md §5).
CHECKED_STATUSES = (NodeStatus.PENDING, NodeStatus.ONLINE, NodeStatus.DEGRADED)


class SlaTier(models.TextChoices):
    STANDARD = "standard", _("Standard")
    PREMIUM = "premium", _("Premium")
    ENTERPRISE = "enterprise", _("Enterprise")


class GpuNode(models.Model):
    provider = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="gpu_nodes")
    name = models.CharField(max_length=80)
    gpu_model = models.ForeignKey(GpuModel, on_delete=models.PROTECT, related_name="nodes")
    gpu_count = models.PositiveSmallIntegerField()
    vcpu = models.PositiveSmallIntegerField()
    ram_gb = models.PositiveIntegerField()
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="nodes")
    bandwidth_mbps = models.PositiveIntegerField()
    price_per_gpu_hour = models.BigIntegerField(help_text="micro-ATH per GPU-hour")
    sla_tier = models.CharField(max_length=16, choices=SlaTier.choices, default=SlaTier.STANDARD)
    endpoint = models.CharField(max_length=200, help_text="URL of the provider agent's health endpoint")

    status = models.CharField(max_length=16, choices=NodeStatus.choices, default=NodeStatus.PENDING, db_index=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    # From checker consensus: parts per million (1,000,000 = perfect).
    health_score = models.PositiveIntegerField(default=0)
    epochs_below_cutoff = models.PositiveIntegerField(default=0)
    # Collateral for this node, held in the provider's collateral bucket.
    required_collateral = models.BigIntegerField(default=0)
    collateral = models.BigIntegerField(default=0)
    paused = models.BooleanField(default=False, help_text="Collateral below the requirement")
    offline_since_epoch = models.BigIntegerField(null=True, blank=True)
    # As the node's agent last reported them with its heartbeats ("" / None: never reported).
    cuda_version = models.CharField(max_length=16, blank=True, default="", help_text="CUDA driver version")
    disk_free_gb = models.PositiveIntegerField(null=True, blank=True)
    disk_total_gb = models.PositiveIntegerField(null=True, blank=True)
    # The latest download speed checker consensus measured (NodeEpoch's
    # ``download_mbps``), and in which epoch: kept here so that a page of
    # offers reads it without a join (None: never measured).
    measured_mbps = models.PositiveIntegerField(null=True, blank=True)
    measured_mbps_epoch = models.BigIntegerField(null=True, blank=True)
    registered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["status", "region"]),
            models.Index(fields=["price_per_gpu_hour"]),
            # The marketplace catalogue and the scheduler: equality on model
            # and status, the cheapest first (the catalogue's default order,
            # ties by health), and the other columns their filters and scores
            # read, so that counting, paging and ranking over a large network
            # read the index alone. The first serves a GPU model's offers,
            # the second the whole catalogue.
            models.Index(
                fields=[
                    "gpu_model",
                    "status",
                    "paused",
                    "price_per_gpu_hour",
                    "-health_score",
                    "region",
                    "gpu_count",
                    "provider",
                ],
                name="node_offers_by_model",
            ),
            models.Index(
                fields=[
                    "status",
                    "paused",
                    "price_per_gpu_hour",
                    "-health_score",
                    "gpu_model",
                    "region",
                    "gpu_count",
                    "provider",
                ],
                name="node_offers",
            ),
            # The catalogue's "best health first": read in order and
            # filtered, instead of sorting every listed node.
            models.Index(fields=["-health_score", "price_per_gpu_hour"], name="node_offers_by_health"),
            # The catalogue's most-VRAM and nearest-first sorts read each GPU
            # model's or region's nodes in price order, status and pause
            # filtered in the index, for one status ("available now") or two
            # ("all listed"); no health score, so an epoch's new scores do
            # not rewrite them.
            models.Index(fields=["gpu_model", "price_per_gpu_hour", "status", "paused"], name="node_listed_by_model"),
            models.Index(fields=["region", "price_per_gpu_hour", "status", "paused"], name="node_listed_by_region"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(gpu_count__gte=1), name="node_has_gpus"),
            models.CheckConstraint(condition=Q(price_per_gpu_hour__gte=0), name="node_price_not_negative"),
            models.CheckConstraint(condition=Q(collateral__gte=0), name="node_collateral_not_negative"),
        ]

    def __str__(self):
        return f"{self.name} ({self.gpu_count}x {self.gpu_model.name})"

    @property
    def vram_total_gb(self) -> int:
        return self.gpu_model.vram_gb * self.gpu_count


class CheckerStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    INACTIVE = "inactive", _("Inactive (below minimum self-stake)")
    JAILED = "jailed", _("Jailed")


class CheckerNode(models.Model):
    """A checker operator's node. ``status``, ``self_stake`` and
    ``total_stake`` are kept by the staking services (the only writers), so
    that lists and assignment read them without summing delegations."""

    operator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="checker_nodes")
    name = models.CharField(max_length=80)
    region = models.ForeignKey(Region, null=True, blank=True, on_delete=models.PROTECT, related_name="checkers")
    status = models.CharField(
        max_length=16, choices=CheckerStatus.choices, default=CheckerStatus.INACTIVE, db_index=True
    )
    commission_rate = models.PositiveIntegerField(default=50_000, help_text="ppm of rewards")
    commission_max_rate = models.PositiveIntegerField(default=200_000, help_text="ppm, fixed at creation")
    commission_max_change = models.PositiveIntegerField(default=10_000, help_text="ppm per epoch, fixed at creation")
    commission_changed_epoch = models.BigIntegerField(null=True, blank=True)
    self_stake = models.BigIntegerField(default=0)
    total_stake = models.BigIntegerField(default=0)
    jailed_until_epoch = models.BigIntegerField(null=True, blank=True)
    # Ed25519 public key (hex) the checker agent signs its reports with;
    # registered by the agent itself, authenticated by its token.
    public_key = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(commission_rate__lte=models.F("commission_max_rate")), name="commission_within_max"
            ),
            models.CheckConstraint(
                condition=Q(commission_max_rate__lte=1_000_000), name="commission_max_at_most_100pct"
            ),
            models.CheckConstraint(
                condition=Q(self_stake__gte=0) & Q(total_stake__gte=0), name="checker_stake_not_negative"
            ),
        ]

    def __str__(self):
        return self.name


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class AgentToken(models.Model):
    """The credential of one agent: it acts for exactly one GPU node or one
    checker node. Only the SHA-256 of the token is stored."""

    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    node = models.OneToOneField(GpuNode, null=True, blank=True, on_delete=models.CASCADE, related_name="agent_token")
    checker = models.OneToOneField(
        CheckerNode, null=True, blank=True, on_delete=models.CASCADE, related_name="agent_token"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(node__isnull=False) & Q(checker__isnull=True))
                | (Q(node__isnull=True) & Q(checker__isnull=False)),
                name="token_for_exactly_one_agent",
            )
        ]

    @classmethod
    def issue(cls, *, node: GpuNode | None = None, checker: CheckerNode | None = None) -> tuple["AgentToken", str]:
        """Create (or replace) the token for ``node`` or ``checker``; returns
        the row and the raw token, which is shown once and never stored."""
        raw = "agt_" + secrets.token_urlsafe(32)
        if node is not None:
            cls.objects.filter(node=node).delete()
        if checker is not None:
            cls.objects.filter(checker=checker).delete()
        token = cls.objects.create(key_hash=hash_token(raw), prefix=raw[4:12], node=node, checker=checker)
        return token, raw

"""What settlement did, epoch by epoch: totals and one explained line per
amount, so every page and the API show the same number with its reason."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import Account, CheckerNode, GpuNode


class EpochSettlement(models.Model):
    """One row per settled epoch. Created inside the settlement transaction:
    its unique epoch is what makes settling twice, or twice at once, pay once."""

    epoch = models.BigIntegerField(unique=True)
    settled_at = models.DateTimeField(auto_now_add=True)
    ledger_height = models.BigIntegerField(default=0, help_text="chain height after this epoch's postings")
    emission = models.BigIntegerField(default=0)
    provider_emission = models.BigIntegerField(default=0)
    checker_emission = models.BigIntegerField(default=0)
    community_emission = models.BigIntegerField(default=0)
    emission_dust = models.BigIntegerField(default=0)
    rental_fees = models.BigIntegerField(default=0)
    protocol_fees = models.BigIntegerField(default=0)
    refunds = models.BigIntegerField(default=0)
    sla_credits = models.BigIntegerField(default=0)
    collateral_slashed = models.BigIntegerField(default=0)
    stake_slashed = models.BigIntegerField(default=0)
    nodes_paid = models.PositiveIntegerField(default=0)
    checkers_paid = models.PositiveIntegerField(default=0)
    nodes_valid = models.PositiveIntegerField(default=0)
    breaches = models.PositiveIntegerField(default=0)
    jailed = models.PositiveIntegerField(default=0)
    incident = models.BooleanField(default=False, help_text="a network incident (see NetworkIncident)")
    unbonded = models.BigIntegerField(default=0)
    proposals_tallied = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-epoch"]

    def __str__(self):
        return f"epoch {self.epoch}"


class LineKind(models.TextChoices):
    PROVIDER_REWARD = "provider_reward", _("Provider capacity reward")
    CHECKER_REWARD = "checker_reward", _("Checker reward")
    COMMUNITY = "community", _("Community pool share")
    FALSE_SPEC_SLASH = "false_spec_slash", _("False-spec collateral slash")
    CHECKER_SLASH = "checker_slash", _("Checker misreport slash")
    CHECKER_JAIL = "checker_jail", _("Checker jailed")
    SLA_BREACH = "sla_breach", _("SLA breach")
    NETWORK_INCIDENT = "network_incident", _("Network incident")
    RENTAL_REFUND = "rental_refund", _("Rental fee refunded (failed epoch)")
    SLA_CREDIT = "sla_credit", _("SLA credit from collateral")
    DOWNTIME_SLASH = "downtime_slash", _("Downtime collateral slash")
    ESCROW_RETURN = "escrow_return", _("Escrow remainder returned (rental ended)")


class SettlementLine(models.Model):
    epoch = models.BigIntegerField(db_index=True)
    kind = models.CharField(max_length=24, choices=LineKind.choices)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.PROTECT, related_name="settlement_lines"
    )
    node = models.ForeignKey(GpuNode, null=True, blank=True, on_delete=models.CASCADE, related_name="settlement_lines")
    checker = models.ForeignKey(
        CheckerNode, null=True, blank=True, on_delete=models.CASCADE, related_name="settlement_lines"
    )
    amount = models.BigIntegerField(default=0, help_text="micro-ATH; negative for a penalty")
    reason = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["epoch", "kind", "id"]
        indexes = [
            models.Index(fields=["account", "epoch"]),
            models.Index(fields=["node", "epoch"]),
            models.Index(fields=["checker", "epoch"]),
        ]


class NetworkIncident(models.Model):
    """An epoch whose faults were the network's, not the checkers'
    (docs/rules.md §5): more than ``incident_share`` of the round's
    checkers would have been jailed, or of its nodes had no valid
    consensus. Nobody was slashed or jailed for measurements that epoch
    (self-contradicting reports excepted); what consensus supported was paid.
    ``evidence`` holds the counts and what the incorrect reports disagreed
    on, and by how much."""

    epoch = models.BigIntegerField(unique=True)
    checkers_active = models.PositiveIntegerField(default=0)
    checkers_would_be_jailed = models.PositiveIntegerField(default=0)
    nodes_in_round = models.PositiveIntegerField(default=0)
    nodes_without_consensus = models.PositiveIntegerField(default=0)
    summary = models.CharField(max_length=300)
    evidence = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-epoch"]

    def __str__(self):
        return f"incident in epoch {self.epoch}"


class SchedulerLease(models.Model):
    """Which ``run_scheduler`` process leads; the lease expires if it dies."""

    name = models.CharField(max_length=40, unique=True)
    holder = models.CharField(max_length=120, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)

"""Staking tables (docs/rules.md §6). Balances stay in ``apps.core``:
bonded ATH sits in the delegator's own ``bonded`` bucket and unbonding ATH
in its ``unbonding`` bucket; these tables say which checker backs what.

Reward accounting is Cosmos F1 style with epochs:

* ``StakingState.cumulative_ratio`` is the checker's reward per micro-ATH of
  eligible stake since creation, scaled by ``services.SCALE``;
  ``RewardPeriod`` keeps its value after each distribution (one per epoch).
* A ``Delegation`` row is a *lot*: stake one delegator bonded to one checker
  in epoch ``start_epoch``. It earns from distributions for epochs after
  ``start_epoch``; its reward is ``amount x (ratio now - ratio after the
  last distribution for an epoch <= start_epoch)``. Lots of one delegator
  and checker that are all earning are merged on every action, so a pair has
  one earning lot plus at most one lot per epoch not yet settled.
* ``PendingStake`` sums, per checker and epoch, the stake bonded in that
  epoch, so a distribution knows the stake that earned it without reading
  delegations.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.models import Account, CheckerNode, LedgerTransaction

from .fields import BigIntText


class StakingState(models.Model):
    checker = models.OneToOneField(CheckerNode, on_delete=models.CASCADE, primary_key=True, related_name="staking")
    period = models.PositiveIntegerField(default=0, help_text="Distributions so far")
    cumulative_ratio = BigIntText(help_text="Reward per uATH of stake, x SCALE")
    last_epoch = models.BigIntegerField(null=True, blank=True, help_text="Epoch of the latest distribution")
    # Delegators' share credited to the rewards pool and not yet paid out.
    rewards_outstanding = models.BigIntegerField(default=0)
    # The exact rounding remainder inside ``rewards_outstanding``, x SCALE:
    # what no delegation can ever claim. Whole micro-ATH of it go to dust.
    remainder_scaled = BigIntText()
    rewards_total = models.BigIntegerField(default=0, help_text="All rewards distributed, commission included")
    commission_total = models.BigIntegerField(default=0)
    dust_total = models.BigIntegerField(default=0, help_text="Rounding remainder swept to the dust account")
    slashed_total = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(rewards_outstanding__gte=0), name="staking_outstanding_not_negative"),
        ]


class RewardPeriod(models.Model):
    """One distribution: the checker's index right after it."""

    checker = models.ForeignKey(CheckerNode, on_delete=models.CASCADE, related_name="reward_periods")
    period = models.PositiveIntegerField()
    epoch = models.BigIntegerField()
    reward = models.BigIntegerField(help_text="Whole reward, uATH")
    commission = models.BigIntegerField()
    delegators_share = models.BigIntegerField()
    eligible_stake = models.BigIntegerField(help_text="Stake bonded before this epoch")
    commission_rate = models.PositiveIntegerField(help_text="ppm in force")
    cumulative_ratio = BigIntText()
    tx = models.ForeignKey(LedgerTransaction, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["checker_id", "-period"]
        constraints = [
            models.UniqueConstraint(fields=["checker", "period"], name="reward_period_unique"),
            models.UniqueConstraint(fields=["checker", "epoch"], name="one_distribution_per_epoch"),
        ]
        indexes = [models.Index(fields=["checker", "epoch"])]


class Delegation(models.Model):
    """A lot of bonded stake (see the module doc). The operator's self-stake
    is the operator's own lots on its checker."""

    delegator = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="delegations")
    checker = models.ForeignKey(CheckerNode, on_delete=models.PROTECT, related_name="delegations")
    amount = models.BigIntegerField()
    start_epoch = models.BigIntegerField()
    # Rewards earned up to ``start_epoch``'s ratio and not yet paid, x SCALE.
    accrued_scaled = BigIntText()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["checker_id", "delegator_id", "start_epoch"]
        constraints = [
            models.UniqueConstraint(fields=["delegator", "checker", "start_epoch"], name="one_lot_per_epoch"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="delegation_amount_positive"),
        ]
        indexes = [models.Index(fields=["checker", "delegator"])]


class PendingStake(models.Model):
    checker = models.ForeignKey(CheckerNode, on_delete=models.CASCADE, related_name="+")
    epoch = models.BigIntegerField()
    amount = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["checker", "epoch"], name="pending_stake_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="pending_stake_not_negative"),
        ]


class UnbondingEntry(models.Model):
    delegator = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="unbonding_entries")
    checker = models.ForeignKey(CheckerNode, on_delete=models.PROTECT, related_name="unbonding_entries")
    initial_amount = models.BigIntegerField()
    amount = models.BigIntegerField(help_text="Left after slashes")
    creation_epoch = models.BigIntegerField()
    maturity_epoch = models.BigIntegerField()
    matured_epoch = models.BigIntegerField(null=True, blank=True)
    tx = models.ForeignKey(LedgerTransaction, null=True, on_delete=models.PROTECT, related_name="+")
    matured_tx = models.ForeignKey(LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["maturity_epoch", "id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="unbonding_not_negative")]
        indexes = [
            models.Index(fields=["matured_epoch", "maturity_epoch"]),
            models.Index(fields=["checker", "creation_epoch"]),
        ]

    @property
    def is_matured(self) -> bool:
        return self.matured_epoch is not None


class Redelegation(models.Model):
    """Stake moved between checkers without unbonding. Until it matures it
    still answers for infractions of the source checker (taken from the
    destination), and cannot move on again."""

    delegator = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="redelegations")
    src = models.ForeignKey(CheckerNode, on_delete=models.PROTECT, related_name="redelegations_out")
    dst = models.ForeignKey(CheckerNode, on_delete=models.PROTECT, related_name="redelegations_in")
    amount = models.BigIntegerField()
    creation_epoch = models.BigIntegerField()
    maturity_epoch = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["src", "creation_epoch"]), models.Index(fields=["delegator", "dst"])]


class SlashEvent(models.Model):
    checker = models.ForeignKey(CheckerNode, on_delete=models.PROTECT, related_name="slash_events")
    fraction_ppm = models.PositiveIntegerField()
    infraction_epoch = models.BigIntegerField()
    epoch = models.BigIntegerField(help_text="When it was applied")
    reason = models.CharField(max_length=200)
    bonded_amount = models.BigIntegerField(default=0)
    unbonding_amount = models.BigIntegerField(default=0)
    redelegated_amount = models.BigIntegerField(default=0)
    total_amount = models.BigIntegerField(default=0)
    tx = models.ForeignKey(LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class SlashImpact(models.Model):
    class Source(models.TextChoices):
        BONDED = "bonded", _("Bonded stake")
        UNBONDING = "unbonding", _("Unbonding entry")
        REDELEGATED = "redelegated", _("Redelegated stake")

    slash = models.ForeignKey(SlashEvent, on_delete=models.CASCADE, related_name="impacts")
    delegator = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="slash_impacts")
    source = models.CharField(max_length=16, choices=Source.choices)
    amount = models.BigIntegerField()
    unbonding_entry = models.ForeignKey(
        UnbondingEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    redelegation = models.ForeignKey(Redelegation, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Where the redelegated stake was taken from (the destination checker).
    checker = models.ForeignKey(CheckerNode, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-slash_id", "id"]
        indexes = [models.Index(fields=["delegator", "slash"])]


class RewardClaim(models.Model):
    delegator = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="reward_claims")
    checker = models.ForeignKey(CheckerNode, on_delete=models.PROTECT, related_name="reward_claims")
    amount = models.BigIntegerField()
    epoch = models.BigIntegerField()
    automatic = models.BooleanField(default=False, help_text="Paid when the position closed")
    tx = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["delegator", "created_at"])]


class JailRecord(models.Model):
    checker = models.ForeignKey(CheckerNode, on_delete=models.PROTECT, related_name="jail_records")
    epoch = models.BigIntegerField()
    until_epoch = models.BigIntegerField()
    reason = models.CharField(max_length=200)
    released_epoch = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class CommissionChange(models.Model):
    checker = models.ForeignKey(CheckerNode, on_delete=models.PROTECT, related_name="commission_changes")
    epoch = models.BigIntegerField()
    old_rate = models.PositiveIntegerField()
    new_rate = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]


class AutoCompound(models.Model):
    """A delegator's standing choice: each settled epoch, claim their rewards
    from this checker and delegate them back to it (once they reach the
    minimum delegation), so the position grows without a click."""

    delegator = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="auto_compounds")
    checker = models.ForeignKey(CheckerNode, on_delete=models.CASCADE, related_name="auto_compounds")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["delegator", "checker"], name="one_auto_compound_per_position")]

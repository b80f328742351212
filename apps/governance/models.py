"""Governance (docs/rules.md §8): proposals, votes and their timeline.

Amounts and voting power are integer micro-ATH; fractions are parts per
million. A vote stores the voter's power at the proposal's snapshot, so a
tally is one aggregate over the votes, however many there are. The bars a
proposal is judged by (quorum, threshold, veto) are copied onto it when it is
created, so voters know them for the whole vote and a later parameter change
cannot move them under a running proposal.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from apps.core.models import Account


class ProposalKind(models.TextChoices):
    TEXT = "text", _("Text (signalling)")
    PARAMETERS = "parameters", _("Parameter change")
    SPEND = "spend", _("Community-pool spend")


class ProposalStatus(models.TextChoices):
    DEPOSIT = "deposit", _("Deposit")
    VOTING = "voting", _("Voting")
    PASSED = "passed", _("Passed")
    REJECTED = "rejected", _("Rejected")
    VETOED = "vetoed", _("Vetoed")
    EXECUTED = "executed", _("Executed")
    FAILED = "failed", _("Failed")


FINAL_STATUSES = (ProposalStatus.REJECTED, ProposalStatus.VETOED, ProposalStatus.EXECUTED, ProposalStatus.FAILED)


class Choice(models.TextChoices):
    YES = "yes", _("Yes")
    NO = "no", _("No")
    ABSTAIN = "abstain", _("Abstain")
    VETO = "no_with_veto", _("No with veto")


class Proposal(models.Model):
    kind = models.CharField(max_length=16, choices=ProposalKind.choices)
    title = models.CharField(max_length=140)
    # Markdown source; rendered and sanitised on display (see ``markdown.py``).
    description = models.TextField(max_length=20_000)
    proposer = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="proposals")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deposit = models.BigIntegerField()
    deposit_height = models.BigIntegerField(null=True, blank=True)

    # Community-pool spend.
    recipient = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.PROTECT, related_name="proposal_spends"
    )
    amount = models.BigIntegerField(null=True, blank=True)

    # The ledger height whose balances are the voting power, and their total.
    snapshot_height = models.BigIntegerField(null=True, blank=True)
    snapshot_power = models.BigIntegerField(null=True, blank=True)
    # Voting is open from the start of ``voting_start_epoch`` until the start
    # of ``voting_end_epoch`` (exclusive).
    voting_start_epoch = models.BigIntegerField(null=True, blank=True)
    voting_end_epoch = models.BigIntegerField(null=True, blank=True)
    quorum = models.BigIntegerField(help_text="ppm of the snapshot's voting power")
    threshold = models.BigIntegerField(help_text="ppm of non-abstain votes")
    veto = models.BigIntegerField(help_text="ppm of votes cast")

    status = models.CharField(max_length=16, choices=ProposalStatus.choices, default=ProposalStatus.DEPOSIT)
    status_reason = models.CharField(max_length=300, blank=True, default="")
    # Final tally, written once when voting ends.
    yes = models.BigIntegerField(default=0)
    no = models.BigIntegerField(default=0)
    abstain = models.BigIntegerField(default=0)
    no_with_veto = models.BigIntegerField(default=0)
    voters = models.BigIntegerField(default=0)
    tallied_at = models.DateTimeField(null=True, blank=True)
    effective_epoch = models.BigIntegerField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "voting_end_epoch"]),
            models.Index(fields=["status", "-id"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(deposit__gt=0), name="proposal_deposit_positive"),
            models.CheckConstraint(
                condition=~Q(kind="spend") | (Q(recipient__isnull=False) & Q(amount__gt=0)),
                name="proposal_spend_has_recipient_and_amount",
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.title}"

    @property
    def number(self) -> str:
        return f"#{self.pk}"

    @property
    def source_label(self) -> str:
        """How parameter history names this proposal (``ParameterChange.source``)."""
        return f"Proposal #{self.pk}"

    def get_absolute_url(self):
        return reverse("governance:proposal", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.status == ProposalStatus.VOTING


class ParameterValue(models.Model):
    """One parameter a parameter-change proposal sets, in the parameter's unit."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="changes")
    key = models.CharField(max_length=64)
    value = models.BigIntegerField()

    class Meta:
        ordering = ["proposal_id", "key"]
        constraints = [models.UniqueConstraint(fields=["proposal", "key"], name="one_value_per_parameter")]


class Vote(models.Model):
    """A holder's current vote; changing it rewrites this row, so it counts once."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="votes")
    voter = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="votes")
    choice = models.CharField(max_length=16, choices=Choice.choices)
    # Voting power at the proposal's snapshot (micro-ATH), fixed when first cast.
    power = models.BigIntegerField()
    changes = models.PositiveIntegerField(default=0)
    # Why, in the voter's words (optional, public with the vote).
    reason = models.CharField(max_length=280, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-power", "id"]
        constraints = [
            models.UniqueConstraint(fields=["proposal", "voter"], name="one_vote_per_voter"),
            models.CheckConstraint(condition=Q(power__gt=0), name="vote_power_positive"),
        ]
        indexes = [
            # Covers the tally (one aggregate grouped by choice) without touching the table.
            models.Index(fields=["proposal", "choice", "power"], name="vote_tally"),
            models.Index(fields=["proposal", "-power"], name="vote_by_power"),
        ]


class ProposalEvent(models.Model):
    """One step of a proposal's timeline."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created, deposit locked")
        VOTING = "voting", _("Voting opened")
        TALLIED = "tallied", _("Tallied")
        DEPOSIT_REFUNDED = "deposit_refunded", _("Deposit refunded")
        DEPOSIT_BURNED = "deposit_burned", _("Deposit burned")
        EXECUTED = "executed", _("Executed")
        FAILED = "failed", _("Execution failed")

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    note = models.CharField(max_length=300, blank=True, default="")
    height = models.BigIntegerField(null=True, blank=True, help_text="ledger transaction, if any")
    epoch = models.BigIntegerField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["proposal_id", "id"]

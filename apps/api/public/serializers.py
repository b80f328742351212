"""What the public API answers with. Accounts appear as ledger addresses
(``provider``, ``operator``, ``account``), never as the person behind
them. Catalogue and report rows list every column of their model, so a
column added later (a throughput figure, a challenge result) is published
with them; everything else names its fields."""

from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.models import CheckerNode, Entry, GpuModel, GpuNode, LedgerTransaction, ParameterChange, Region
from apps.governance.models import Proposal, ProposalEvent, Vote
from apps.marketplace.models import NodePause, Rental, RentalCharge
from apps.monitoring import signing
from apps.monitoring.models import (
    Assignment,
    AssignmentRound,
    CheckerEpoch,
    CheckerKey,
    CheckerReport,
    EpochConsensus,
    NodeEpoch,
)
from apps.platform.api_fields import MicroAthField, SignedMicroAthField
from apps.settlement.models import EpochSettlement, NetworkIncident, SettlementLine
from apps.staking.models import CommissionChange, JailRecord, Redelegation, RewardPeriod, SlashEvent

ADDRESS = {"type": "string", "nullable": True, "description": "ledger address (ath1...)"}


class PublicParameterChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = ParameterChange
        fields = ["id", "key", "value", "effective_epoch", "source", "created_at"]


class PublicParameterSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    unit = serializers.CharField(help_text="uath, ppm, ms, seconds, epochs, count, gb or mbps")
    default = serializers.IntegerField()
    minimum = serializers.IntegerField()
    maximum = serializers.IntegerField()
    governable = serializers.BooleanField()
    epoch = serializers.IntegerField(help_text="the epoch the value is read at")
    value = serializers.IntegerField(help_text="in force at that epoch")
    history = PublicParameterChangeSerializer(many=True, help_text="every value set, oldest first")


class PublicGpuModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = GpuModel
        fields = "__all__"


class PublicRegionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Region
        fields = "__all__"


class PublicNodeSerializer(serializers.ModelSerializer):
    provider = extend_schema_field(ADDRESS)(
        serializers.CharField(source="provider_address", default=None, allow_null=True)
    )
    required_collateral = MicroAthField()
    collateral = MicroAthField(allow_zero=True)
    price_per_gpu_hour = MicroAthField(allow_zero=True)

    class Meta:
        model = GpuNode
        # Not the agent's endpoint: where a provider's machine listens is
        # theirs to tell, and nothing an amount depends on.
        fields = [
            "id",
            "name",
            "provider",
            "gpu_model",
            "gpu_count",
            "vcpu",
            "ram_gb",
            "region",
            "bandwidth_mbps",
            "measured_mbps",
            "measured_mbps_epoch",
            "price_per_gpu_hour",
            "sla_tier",
            "status",
            "status_changed_at",
            "health_score",
            "required_collateral",
            "collateral",
            "paused",
            "offline_since_epoch",
            "registered_at",
        ]


class PublicCheckerSerializer(serializers.ModelSerializer):
    operator = extend_schema_field(ADDRESS)(
        serializers.CharField(source="operator_address", default=None, allow_null=True)
    )
    self_stake = MicroAthField(allow_zero=True)
    total_stake = MicroAthField(allow_zero=True)

    class Meta:
        model = CheckerNode
        fields = [
            "id",
            "name",
            "operator",
            "region",
            "status",
            "commission_rate",
            "commission_max_rate",
            "commission_max_change",
            "commission_changed_epoch",
            "self_stake",
            "total_stake",
            "jailed_until_epoch",
            "public_key",
            "created_at",
        ]


class PublicAssignmentRoundSerializer(serializers.ModelSerializer):
    class Meta:
        model = AssignmentRound
        fields = "__all__"


class PublicAssignmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Assignment
        fields = "__all__"


def signed_relations() -> list[str]:
    """Signed fields a report keeps in a row of its own (one-to-one), which
    a list must load with the reports rather than one query per report."""
    related = {r.name for r in CheckerReport._meta.related_objects if r.one_to_one}
    return [k for k in signing.OPTIONAL_SIGNED_FIELDS if k in related]


def _signed_value(report: CheckerReport, key: str):
    if key == "node":
        return report.node_id
    try:
        value = getattr(report, key)
    except ObjectDoesNotExist:  # a signed part this report does not carry
        return None
    if isinstance(value, models.Model):
        # The compute challenge, signed as the object the checker sent.
        from apps.monitoring import challenge_reports

        return {k: getattr(value, k) for k in challenge_reports.KEYS}
    return value


def signed_body(report: CheckerReport) -> dict:
    """The report as its checker signed it (``apps.monitoring.signing``)."""
    return {k: _signed_value(report, k) for k in (*signing.SIGNED_FIELDS, *signing.OPTIONAL_SIGNED_FIELDS)}


class PublicReportSerializer(serializers.ModelSerializer):
    payload = serializers.SerializerMethodField(
        help_text="the exact bytes the checker signed (canonical JSON: keys sorted, no spaces), as UTF-8 text; "
        "sha256 of it is payload_hash"
    )
    public_key = serializers.SerializerMethodField(
        help_text="the Ed25519 public key (hex) the checker had registered when it submitted the report"
    )

    class Meta:
        model = CheckerReport
        fields = "__all__"
        extra_kwargs = {
            "signature": {"help_text": "Ed25519 signature of payload, hex"},
            "correct": {"help_text": "the consensus mark: true correct, false incorrect, null not judged (yet)"},
        }

    def get_payload(self, obj) -> str:
        return signing.message(signed_body(obj)).decode()

    def get_public_key(self, obj) -> str:
        return key_at(self.context.get("keys", {}).get(obj.checker_id, []), obj.submitted_at, obj.checker.public_key)


def key_at(history: list, moment, current: str) -> str:
    """The key registered last before ``moment`` (history oldest first);
    reports older than any recorded key were signed with the current one."""
    key = None
    for k in history:
        if k.registered_at <= moment:
            key = k.public_key
    return key or current


class PublicCheckerKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = CheckerKey
        fields = ["id", "checker", "public_key", "registered_at"]


class PublicNodeEpochSerializer(serializers.ModelSerializer):
    class Meta:
        model = NodeEpoch
        fields = "__all__"


class PublicCheckerEpochSerializer(serializers.ModelSerializer):
    class Meta:
        model = CheckerEpoch
        fields = "__all__"


class PublicEpochConsensusSerializer(serializers.ModelSerializer):
    class Meta:
        model = EpochConsensus
        fields = "__all__"


SETTLEMENT_AMOUNTS = [
    "emission",
    "provider_emission",
    "checker_emission",
    "community_emission",
    "emission_dust",
    "rental_fees",
    "protocol_fees",
    "refunds",
    "sla_credits",
    "collateral_slashed",
    "stake_slashed",
    "unbonded",
]


class PublicSettlementSerializer(serializers.ModelSerializer):
    class Meta:
        model = EpochSettlement
        fields = "__all__"

    def get_fields(self):
        fields = super().get_fields()
        for name in SETTLEMENT_AMOUNTS:
            fields[name] = MicroAthField(allow_zero=True, read_only=True)
        return fields


class PublicLineSerializer(serializers.ModelSerializer):
    account = extend_schema_field(ADDRESS)(
        serializers.CharField(source="account.address", default=None, allow_null=True)
    )
    amount = SignedMicroAthField(help_text="negative for a penalty")

    class Meta:
        model = SettlementLine
        fields = ["id", "epoch", "kind", "account", "node", "checker", "amount", "reason", "details"]


class PublicIncidentSerializer(serializers.ModelSerializer):
    class Meta:
        model = NetworkIncident
        fields = "__all__"


class PublicCommissionChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = CommissionChange
        fields = ["id", "checker", "epoch", "old_rate", "new_rate", "created_at"]


class PublicJailSerializer(serializers.ModelSerializer):
    class Meta:
        model = JailRecord
        fields = ["id", "checker", "epoch", "until_epoch", "reason", "released_epoch", "created_at"]
        extra_kwargs = {"released_epoch": {"help_text": "the epoch its operator unjailed it; null while jailed"}}


class PublicNodePauseSerializer(serializers.ModelSerializer):
    collateral = MicroAthField(allow_zero=True)
    required_collateral = MicroAthField(allow_zero=True)

    class Meta:
        model = NodePause
        fields = ["id", "node", "epoch", "paused", "reason", "collateral", "required_collateral", "created_at"]


class PublicRewardPeriodSerializer(serializers.ModelSerializer):
    tx = serializers.IntegerField(
        source="tx.height", default=None, allow_null=True, help_text="ledger height of its posting"
    )
    cumulative_ratio = serializers.CharField(help_text="reward per uATH of stake x SCALE, a decimal integer")

    class Meta:
        model = RewardPeriod
        fields = [
            "id",
            "checker",
            "period",
            "epoch",
            "reward",
            "commission",
            "delegators_share",
            "eligible_stake",
            "commission_rate",
            "cumulative_ratio",
            "tx",
            "created_at",
        ]


class PublicRedelegationSerializer(serializers.ModelSerializer):
    delegator = extend_schema_field(ADDRESS)(serializers.CharField(source="delegator.address"))

    class Meta:
        model = Redelegation
        fields = ["id", "delegator", "src", "dst", "amount", "creation_epoch", "maturity_epoch", "created_at"]


class PublicSlashSerializer(serializers.ModelSerializer):
    tx = serializers.IntegerField(
        source="tx.height", default=None, allow_null=True, help_text="ledger height of its posting"
    )

    class Meta:
        model = SlashEvent
        fields = [
            "id",
            "checker",
            "fraction_ppm",
            "infraction_epoch",
            "epoch",
            "reason",
            "bonded_amount",
            "unbonding_amount",
            "redelegated_amount",
            "total_amount",
            "tx",
            "created_at",
        ]


class PublicEntrySerializer(serializers.ModelSerializer):
    address = serializers.CharField(source="account.address")
    amount = SignedMicroAthField(help_text="signed uATH")

    class Meta:
        model = Entry
        fields = ["seq", "address", "bucket", "amount"]


class PublicTransactionSerializer(serializers.ModelSerializer):
    entries = PublicEntrySerializer(many=True, read_only=True)

    class Meta:
        model = LedgerTransaction
        fields = ["height", "kind", "memo", "meta", "created_at", "prev_hash", "hash", "entries"]


class PublicRentalChargeSerializer(serializers.ModelSerializer):
    provider = extend_schema_field(ADDRESS)(
        serializers.CharField(source="provider_address", default=None, allow_null=True)
    )
    renter = extend_schema_field(ADDRESS)(
        serializers.CharField(
            source="renter_address", default=None, allow_null=True, help_text="whose escrow the charge is taken from"
        )
    )

    class Meta:
        model = RentalCharge
        fields = [
            "id",
            "rental",
            "epoch",
            "node",
            "provider",
            "renter",
            "outcome",
            "charge",
            "fee",
            "provider_amount",
            "refunded",
            "sla_credit",
            "reason",
            "uptime_ppm",
            "latency_ms",
            "workload_ppm",
            "tx_height",
            "created_at",
        ]


def _event(proposal: Proposal, *kinds: str) -> ProposalEvent | None:
    """The proposal's first event of one of ``kinds`` (events prefetched)."""
    return next((e for e in proposal.events.all() if e.kind in kinds), None)


class PublicProposalSerializer(serializers.ModelSerializer):
    """A proposal as its postings need it: the deposit and the epoch it was
    made in (whose ``min_deposit``, quorum, threshold and veto bars it was
    judged by), the final tally, what became of the deposit and, for a
    community-pool spend, its recipient, amount and posting."""

    kind = serializers.CharField(help_text='"text", "parameters" or "spend"')
    status = serializers.CharField(help_text="deposit, voting, passed, rejected, vetoed, executed or failed")
    proposer = extend_schema_field(ADDRESS)(serializers.CharField(source="proposer.address"))
    recipient = extend_schema_field(ADDRESS)(
        serializers.CharField(source="recipient.address", default=None, allow_null=True)
    )
    created_epoch = serializers.SerializerMethodField(help_text="the epoch it was created (and its deposit locked) in")
    deposit_fate = serializers.SerializerMethodField(help_text='"refunded", "burned", or null while voting')
    deposit_fate_height = serializers.SerializerMethodField(help_text="ledger height of the refund or burn")
    spend_height = serializers.SerializerMethodField(help_text="ledger height of the community-pool spend, if paid")

    class Meta:
        model = Proposal
        fields = [
            "id",
            "kind",
            "status",
            "proposer",
            "deposit",
            "deposit_height",
            "created_epoch",
            "recipient",
            "amount",
            "quorum",
            "threshold",
            "veto",
            "snapshot_height",
            "snapshot_power",
            "voting_start_epoch",
            "voting_end_epoch",
            "yes",
            "no",
            "abstain",
            "no_with_veto",
            "tallied_at",
            "deposit_fate",
            "deposit_fate_height",
            "spend_height",
        ]

    def get_created_epoch(self, obj) -> int | None:
        e = _event(obj, ProposalEvent.Kind.CREATED)
        return e.epoch if e else None

    def get_deposit_fate(self, obj) -> str | None:
        e = _event(obj, ProposalEvent.Kind.DEPOSIT_REFUNDED, ProposalEvent.Kind.DEPOSIT_BURNED)
        if e is None:
            return None
        return "refunded" if e.kind == ProposalEvent.Kind.DEPOSIT_REFUNDED else "burned"

    def get_deposit_fate_height(self, obj) -> int | None:
        e = _event(obj, ProposalEvent.Kind.DEPOSIT_REFUNDED, ProposalEvent.Kind.DEPOSIT_BURNED)
        return e.height if e else None

    def get_spend_height(self, obj) -> int | None:
        e = _event(obj, ProposalEvent.Kind.EXECUTED)
        return e.height if e and obj.kind == "spend" else None


class PublicVoteSerializer(serializers.ModelSerializer):
    """A holder's vote on a proposal, with its power: the voter's available,
    bonded and unbonding ATH at the proposal's snapshot."""

    voter = extend_schema_field(ADDRESS)(serializers.CharField(source="voter.address"))
    choice = serializers.CharField(help_text='"yes", "no", "abstain" or "no_with_veto"')

    class Meta:
        model = Vote
        fields = ["id", "proposal", "voter", "choice", "power"]


class PublicRentalSerializer(serializers.ModelSerializer):
    """A rental's escrow account: all escrow posted for it (its own funding
    and top-ups plus what a rental it replaced handed over), what it handed
    to its replacement, and what it released and refunded so far."""

    renter = extend_schema_field(ADDRESS)(serializers.CharField(source="renter_address", default=None, allow_null=True))
    mode = serializers.CharField(help_text='"reserved" or "on_demand"')
    status = serializers.CharField(help_text='"active", "ended" or "replaced"')

    class Meta:
        model = Rental
        fields = [
            "id",
            "renter",
            "node",
            "mode",
            "status",
            "start_epoch",
            "end_epoch",
            "price_per_epoch",
            "escrow_total",
            "released",
            "refunded",
            "carried_out",
            "replaces",
            "created_at",
        ]

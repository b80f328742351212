"""The public, read-only API (``/api/v1/public/``): everything an outside
auditor needs to recompute every amount of every settled epoch
(docs/rules.md §7b, docs/auditing.md), with full history.

No login and no session: these views ignore cookies, so a browser's
session never changes an answer. Lists are keyset-paginated
(:mod:`.pagination`) and filtered (:mod:`.filters`); each list is a fixed
number of queries whatever its page size."""

from django.db.models import F, Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import epochs, parameters
from apps.core.models import CheckerNode, Entry, GpuModel, GpuNode, LedgerTransaction, ParameterChange, Region, TxKind
from apps.governance.models import Proposal, Vote
from apps.marketplace.models import NodePause, Rental, RentalCharge
from apps.monitoring.models import (
    Assignment,
    AssignmentRound,
    CheckerEpoch,
    CheckerKey,
    CheckerReport,
    EpochConsensus,
    NodeEpoch,
)
from apps.settlement.models import EpochSettlement, LineKind, NetworkIncident, SettlementLine
from apps.staking.models import CommissionChange, JailRecord, Redelegation, RewardPeriod, SlashEvent

from . import serializers as s
from .filters import PublicFilters, parse_int
from .pagination import KeysetPagination


class PublicList(generics.ListAPIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    pagination_class = KeysetPagination
    filter_backends = [PublicFilters]
    epoch_field: str | None = "epoch"
    int_filters: dict = {}
    choice_filters: dict = {}


class Parameters(APIView):
    """Every protocol parameter with its bounds, its value in force at
    ``epoch`` (default: the current epoch) and its whole history."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("epoch", int, description="read the values in force at this epoch")],
        responses=s.PublicParameterSerializer(many=True),
    )
    def get(self, request):
        epoch = parse_int(request.query_params, "epoch")
        if epoch is None:
            try:
                epoch = epochs.current_number()
            except LookupError:
                epoch = 0
        history: dict[str, list] = {}
        for change in ParameterChange.objects.order_by("effective_epoch", "id"):
            history.setdefault(change.key, []).append(change)
        in_force = parameters.current(epoch)
        rows = [
            {
                "key": d.key,
                "label": str(d.label),
                "unit": d.unit,
                "default": d.default,
                "minimum": d.minimum,
                "maximum": d.maximum,
                "governable": d.governable,
                "epoch": epoch,
                "value": in_force[d.key],
                "history": history.get(d.key, []),
            }
            for d in parameters.DEFINITIONS.values()
            if d.key in in_force
        ]
        return Response(s.PublicParameterSerializer(rows, many=True).data)


class ParameterChanges(PublicList):
    """Every value any parameter was set to, with the epoch it took effect."""

    serializer_class = s.PublicParameterChangeSerializer
    epoch_field = "effective_epoch"
    choice_filters = {"key": ("key", tuple(parameters.DEFINITIONS))}
    queryset = ParameterChange.objects.all()


class GpuModels(PublicList):
    """The GPU catalogue: stake weight (collateral), capacity weight (share
    of provider emission) and the rest of each model's columns."""

    serializer_class = s.PublicGpuModelSerializer
    epoch_field = None
    queryset = GpuModel.objects.all()


class Regions(PublicList):
    serializer_class = s.PublicRegionSerializer
    epoch_field = None
    queryset = Region.objects.all()


class Nodes(PublicList):
    """GPU nodes, with their provider's address and their collateral."""

    serializer_class = s.PublicNodeSerializer
    epoch_field = None
    int_filters = {"gpu_model": "gpu_model_id", "region": "region_id"}
    queryset = GpuNode.objects.annotate(provider_address=F("provider__wallet__address"))


class Checkers(PublicList):
    """Checker nodes, with their operator's address and the public key their
    reports are signed with."""

    serializer_class = s.PublicCheckerSerializer
    epoch_field = None
    queryset = CheckerNode.objects.annotate(operator_address=F("operator__wallet__address"))


class AssignmentRounds(PublicList):
    """Each epoch's round: the checkers and nodes it was drawn from."""

    serializer_class = s.PublicAssignmentRoundSerializer
    queryset = AssignmentRound.objects.all()


class Assignments(PublicList):
    serializer_class = s.PublicAssignmentSerializer
    int_filters = {"node": "node_id", "checker": "checker_id"}
    queryset = Assignment.objects.all()


class Reports(PublicList):
    """Every checker report as signed, with the checker's public key and its
    consensus mark. Verify: Ed25519(public_key, payload, signature)."""

    serializer_class = s.PublicReportSerializer
    int_filters = {"node": "node_id", "checker": "checker_id"}

    def get_queryset(self):
        return CheckerReport.objects.select_related("checker", *s.signed_relations())

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        # Each report's key from its checker's key history: one query a page.
        self.keys: dict[int, list] = {}
        for key in CheckerKey.objects.filter(checker_id__in={r.checker_id for r in page}).order_by("id"):
            self.keys.setdefault(key.checker_id, []).append(key)
        return page

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "keys": getattr(self, "keys", {})}


class CheckerKeys(PublicList):
    """Every key each checker has signed reports with, from when."""

    serializer_class = s.PublicCheckerKeySerializer
    epoch_field = None
    int_filters = {"checker": "checker_id"}
    queryset = CheckerKey.objects.all()


class Consensus(PublicList):
    """The consensus per node and epoch (medians of the reports, validity,
    status before and after)."""

    serializer_class = s.PublicNodeEpochSerializer
    int_filters = {"node": "node_id"}
    queryset = NodeEpoch.objects.all()


class ConsensusEpochs(PublicList):
    """Per epoch: when consensus was computed and the latency noise floor
    its judging used."""

    serializer_class = s.PublicEpochConsensusSerializer
    queryset = EpochConsensus.objects.all()


class CheckerEpochs(PublicList):
    """Per checker and epoch: assigned, delivered, correct, incorrect."""

    serializer_class = s.PublicCheckerEpochSerializer
    int_filters = {"checker": "checker_id"}
    queryset = CheckerEpoch.objects.all()


class Settlements(PublicList):
    """Every settled epoch with its totals (no cut-off)."""

    serializer_class = s.PublicSettlementSerializer
    queryset = EpochSettlement.objects.all()


class SettlementLines(PublicList):
    """Every settled amount with its reason and inputs (``details``)."""

    serializer_class = s.PublicLineSerializer
    int_filters = {"node": "node_id", "checker": "checker_id"}
    choice_filters = {"kind": ("kind", tuple(LineKind.values))}
    queryset = SettlementLine.objects.select_related("account")


class Incidents(PublicList):
    serializer_class = s.PublicIncidentSerializer
    queryset = NetworkIncident.objects.all()


class CommissionChanges(PublicList):
    serializer_class = s.PublicCommissionChangeSerializer
    int_filters = {"checker": "checker_id"}
    queryset = CommissionChange.objects.all()


class JailEvents(PublicList):
    """Each jailing, with the epoch its operator unjailed it."""

    serializer_class = s.PublicJailSerializer
    int_filters = {"checker": "checker_id"}
    queryset = JailRecord.objects.all()


class NodePauses(PublicList):
    """Each pause (collateral below the requirement) and resume of a node."""

    serializer_class = s.PublicNodePauseSerializer
    int_filters = {"node": "node_id"}
    queryset = NodePause.objects.all()


class RewardPeriods(PublicList):
    """Every distribution of every checker (the F1 index after it); no cut-off."""

    serializer_class = s.PublicRewardPeriodSerializer
    int_filters = {"checker": "checker_id"}
    queryset = RewardPeriod.objects.select_related("tx")


class Redelegations(PublicList):
    serializer_class = s.PublicRedelegationSerializer
    epoch_field = "creation_epoch"
    int_filters = {"src": "src_id", "dst": "dst_id"}
    queryset = Redelegation.objects.select_related("delegator")


class Slashes(PublicList):
    serializer_class = s.PublicSlashSerializer
    int_filters = {"checker": "checker_id"}
    queryset = SlashEvent.objects.select_related("tx")


class Transactions(PublicList):
    """The ledger, oldest first, each transaction with its legs (enough to
    recompute its hash and every balance)."""

    serializer_class = s.PublicTransactionSerializer
    epoch_field = None
    int_filters = {"height_from": "height__gte", "height_to": "height__lte"}
    choice_filters = {"kind": ("kind", tuple(TxKind.values))}
    queryset = LedgerTransaction.objects.prefetch_related(
        Prefetch("entries", queryset=Entry.objects.select_related("account").order_by("seq"))
    )


class RentalCharges(PublicList):
    """Each rental epoch billed: the charge at the locked price, the protocol
    fee, the provider's part, or the refund and SLA credit of a failed epoch,
    with the consensus it was judged on and its posting's height."""

    serializer_class = s.PublicRentalChargeSerializer
    int_filters = {"node": "node_id", "rental": "rental_id"}
    queryset = RentalCharge.objects.annotate(
        provider_address=F("provider__wallet__address"), renter_address=F("rental__renter__wallet__address")
    )


class Proposals(PublicList):
    """Every governance proposal with its deposit, the epoch it was made in,
    its final tally, what became of the deposit and, for a community-pool
    spend, its recipient and amount, with the heights of their postings."""

    serializer_class = s.PublicProposalSerializer
    epoch_field = None
    queryset = Proposal.objects.select_related("proposer", "recipient").prefetch_related("events")


class Votes(PublicList):
    """Every vote on every proposal, with the voter's power at the snapshot
    (what the tally sums)."""

    serializer_class = s.PublicVoteSerializer
    epoch_field = None
    int_filters = {"proposal": "proposal_id"}
    queryset = Vote.objects.select_related("voter")


class Rentals(PublicList):
    """Every rental's escrow: funding, top-ups and what a replaced rental
    handed over (``escrow_total``), what it handed to its replacement
    (``carried_out``), its price and billed epochs; with its escrow and
    refund postings (``meta.rental``) and its charges, enough to recompute
    every early-end refund and the remainder its last epoch returns."""

    serializer_class = s.PublicRentalSerializer
    epoch_field = None
    int_filters = {"node": "node_id"}
    queryset = Rental.objects.annotate(renter_address=F("renter__wallet__address"))

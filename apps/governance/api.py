"""Governance over REST. Reading is public; creating and voting need a
logged-in holder, and always act as that holder: no field names a proposer
or a voter, so nobody can act for another. Amounts and voting power are
micro-ATH strings; fractions are integer parts per million."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import parameters
from apps.core.numbers import NumberError, parse_int
from apps.platform.api_fields import MicroAthField, validated

from . import services
from .models import Choice, Proposal, ProposalEvent, ProposalKind, ProposalStatus, Vote


def _one_of(choices) -> str:
    return "One of: " + ", ".join(f'"{c}"' for c in choices.values) + "."


# Choice sets go out as plain strings with their values listed, rather than as
# OpenAPI enums: several apps have fields named "kind" and "status", and their
# enum components would collide in the schema.
def _choice(choices, **kwargs):
    return serializers.CharField(help_text=_one_of(choices), **kwargs)


@extend_schema_field({"type": "string", "pattern": "^-?[0-9]+$", "example": "334000"})
class ParameterValueField(serializers.Field):
    """A parameter value as an integer in the parameter's unit, on the wire
    as a string of digits (some micro-ATH values exceed what a JSON float
    holds exactly)."""

    def to_representation(self, value):
        return str(int(value))

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int)):
            raise serializers.ValidationError("Send each value as an integer or a string of digits.")
        try:
            # Every bound fits in 64 bits: 19 digits at most.
            return parse_int(data, minimum=None, max_digits=19, what="value")
        except NumberError as exc:
            if "too long" in str(exc) or "too large" in str(exc):
                raise serializers.ValidationError("The value is out of range for every parameter.") from None
            raise serializers.ValidationError(
                'Each value is a whole number in the parameter\'s unit (micro-ATH, ppm, ...), e.g. "334000".'
            ) from None


class ChangeSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.SerializerMethodField()
    unit = serializers.SerializerMethodField()
    value = ParameterValueField()
    display = serializers.SerializerMethodField()

    def get_label(self, obj) -> str:
        return parameters.definition(obj.key).label

    def get_unit(self, obj) -> str:
        return parameters.definition(obj.key).unit

    def get_display(self, obj) -> str:
        return parameters.definition(obj.key).format(obj.value)


class EventSerializer(serializers.ModelSerializer):
    kind = _choice(ProposalEvent.Kind, read_only=True)

    class Meta:
        model = ProposalEvent
        fields = ["kind", "note", "height", "epoch", "at"]


class TallySerializer(serializers.Serializer):
    yes = MicroAthField()
    no = MicroAthField()
    abstain = MicroAthField()
    no_with_veto = MicroAthField()
    cast = MicroAthField()
    voters = serializers.IntegerField()
    total_power = MicroAthField()
    turnout_ppm = serializers.IntegerField()
    veto_ppm = serializers.IntegerField()
    yes_ppm = serializers.IntegerField()
    quorum_reached = serializers.BooleanField()
    vetoed = serializers.BooleanField()
    threshold_reached = serializers.BooleanField()
    outcome = _choice(ProposalStatus)


class ProposalSerializer(serializers.ModelSerializer):
    proposer = serializers.CharField(source="proposer.address")
    recipient = serializers.CharField(source="recipient.address", allow_null=True, default=None)
    deposit = MicroAthField()
    amount = MicroAthField(allow_null=True)
    snapshot_power = MicroAthField(allow_null=True)
    changes = ChangeSerializer(many=True)
    url = serializers.CharField(source="get_absolute_url")
    kind = _choice(ProposalKind, read_only=True)
    status = _choice(ProposalStatus, read_only=True)

    class Meta:
        model = Proposal
        fields = [
            "id",
            "url",
            "kind",
            "title",
            "status",
            "status_reason",
            "proposer",
            "deposit",
            "recipient",
            "amount",
            "changes",
            "snapshot_height",
            "snapshot_power",
            "voting_start_epoch",
            "voting_end_epoch",
            "quorum",
            "threshold",
            "veto",
            "effective_epoch",
            "created_at",
            "tallied_at",
        ]


class ProposalDetailSerializer(ProposalSerializer):
    tally = serializers.SerializerMethodField()
    events = EventSerializer(many=True)

    class Meta(ProposalSerializer.Meta):
        fields = [*ProposalSerializer.Meta.fields, "description", "tally", "events"]

    @extend_schema_field(TallySerializer)
    def get_tally(self, obj) -> dict:
        return TallySerializer(services.tally(obj)).data


class CreateSerializer(serializers.Serializer):
    kind = _choice(ProposalKind)
    title = serializers.CharField(max_length=services.TITLE_MAX)
    description = serializers.CharField(max_length=services.DESCRIPTION_MAX)
    deposit = MicroAthField()
    changes = serializers.DictField(child=ParameterValueField(), required=False)
    recipient = serializers.CharField(max_length=64, required=False)
    amount = MicroAthField(required=False)

    def validate_kind(self, value):
        if value not in ProposalKind.values:
            raise ValidationError(f'"{value}" is not a valid choice. {_one_of(ProposalKind)}')
        return value

    def validate(self, data):
        kind = data["kind"]
        if kind == ProposalKind.PARAMETERS and not data.get("changes"):
            raise ValidationError({"changes": "A parameter change names at least one parameter and its new value."})
        if kind == ProposalKind.SPEND:
            missing = [f for f in ("recipient", "amount") if not data.get(f)]
            if missing:
                raise ValidationError({f: "A community-pool spend needs a recipient and an amount." for f in missing})
        return data


class VoteSerializer(serializers.ModelSerializer):
    voter = serializers.CharField(source="voter.address", read_only=True)
    name = serializers.CharField(source="voter.display_name", read_only=True)
    power = MicroAthField(read_only=True)
    choice = _choice(Choice, read_only=True)

    class Meta:
        model = Vote
        fields = ["voter", "name", "choice", "power", "changes", "updated_at"]


class MyVoteSerializer(serializers.Serializer):
    proposal = serializers.IntegerField()
    power = MicroAthField(help_text="Your voting power at the proposal's snapshot (0 if none)")
    vote = VoteSerializer(allow_null=True, help_text="Your vote, or null if you have not voted")


class CastSerializer(serializers.Serializer):
    choice = _choice(Choice)

    def validate_choice(self, value):
        if value not in Choice.values:
            raise ValidationError(f'"{value}" is not a valid choice. {_one_of(Choice)}')
        return value


class ProposalList(generics.ListAPIView):
    """Proposals, newest first; POST creates one as the logged-in holder and
    locks its deposit from their available balance."""

    serializer_class = ProposalSerializer

    @extend_schema(parameters=[OpenApiParameter("status", str, description=_one_of(ProposalStatus))])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        rows = Proposal.objects.select_related("proposer", "recipient").prefetch_related("changes")
        status_filter = self.request.query_params.get("status")
        if status_filter:
            if status_filter not in ProposalStatus.values:
                raise ValidationError({"status": f"One of: {', '.join(ProposalStatus.values)}."})
            rows = rows.filter(status=status_filter)
        return rows

    @extend_schema(request=CreateSerializer, responses={201: ProposalDetailSerializer})
    def post(self, request):
        data = validated(CreateSerializer, request)
        proposal = services.create_proposal(
            request.user,
            kind=data["kind"],
            title=data["title"],
            description=data["description"],
            deposit=data["deposit"],
            changes=data.get("changes"),
            recipient_address=data.get("recipient"),
            amount=data.get("amount"),
        )
        return Response(ProposalDetailSerializer(proposal).data, status=status.HTTP_201_CREATED)


class ProposalDetail(generics.RetrieveAPIView):
    """One proposal with its live (or final) tally and its timeline."""

    serializer_class = ProposalDetailSerializer
    queryset = Proposal.objects.select_related("proposer", "recipient").prefetch_related("changes", "events")


class ProposalVotes(generics.ListAPIView):
    """Everyone who voted, by voting power."""

    serializer_class = VoteSerializer

    def get_queryset(self):
        proposal = get_object_or_404(Proposal, pk=self.kwargs["pk"])
        return Vote.objects.filter(proposal=proposal).select_related("voter", "voter__owner").order_by("-power", "id")


class MyVote(APIView):
    """Your voting power on a proposal and your vote (GET); cast or change
    your vote (POST)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: MyVoteSerializer})
    def get(self, request, pk):
        proposal = get_object_or_404(Proposal, pk=pk)
        vote = services.vote_of(request.user, proposal)
        return Response(
            {
                "proposal": proposal.pk,
                "power": str(services.power_of(request.user, proposal) or 0),
                "vote": VoteSerializer(vote).data if vote else None,
            }
        )

    @extend_schema(request=CastSerializer, responses={200: VoteSerializer})
    def post(self, request, pk):
        choice = validated(CastSerializer, request)["choice"]
        get_object_or_404(Proposal, pk=pk)
        vote = services.cast_vote(request.user, pk, choice)
        return Response(VoteSerializer(vote).data, status=status.HTTP_200_OK)

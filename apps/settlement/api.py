from django.shortcuts import get_object_or_404
from rest_framework import generics, permissions, serializers

from apps.platform.api_fields import MicroAthField, SignedMicroAthField

from . import queries
from .models import EpochSettlement, NetworkIncident, SettlementLine

AMOUNT_FIELDS = [
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


class EpochSerializer(serializers.ModelSerializer):
    class Meta:
        model = EpochSettlement
        exclude = ["id"]

    def get_fields(self):
        fields = super().get_fields()
        for name in AMOUNT_FIELDS:
            fields[name] = MicroAthField(read_only=True)
        return fields


class LineSerializer(serializers.ModelSerializer):
    amount = SignedMicroAthField(help_text="Negative for a penalty")
    account = serializers.CharField(source="account.address", default=None, read_only=True)
    node = serializers.IntegerField(source="node_id", read_only=True)
    checker = serializers.IntegerField(source="checker_id", read_only=True)

    class Meta:
        model = SettlementLine
        fields = ["epoch", "kind", "account", "node", "checker", "amount", "reason", "details"]


class IncidentSerializer(serializers.ModelSerializer):
    class Meta:
        model = NetworkIncident
        exclude = ["id"]


class IncidentList(generics.ListAPIView):
    """Network incidents, newest first: epochs in which more than
    ``incident_share`` of the round's checkers would have been jailed or of
    its nodes had no valid consensus, with the evidence (docs/rules.md §5)."""

    permission_classes = [permissions.AllowAny]
    serializer_class = IncidentSerializer
    queryset = NetworkIncident.objects.order_by("-epoch")


class EpochList(generics.ListAPIView):
    """Settled epochs, newest first, with their totals."""

    permission_classes = [permissions.AllowAny]
    serializer_class = EpochSerializer
    queryset = EpochSettlement.objects.order_by("-epoch")


class EpochDetail(generics.RetrieveAPIView):
    permission_classes = [permissions.AllowAny]
    serializer_class = EpochSerializer
    lookup_field = "epoch"
    queryset = EpochSettlement.objects.all()


class EpochLines(generics.ListAPIView):
    """Every amount settled in an epoch, with its reason."""

    permission_classes = [permissions.AllowAny]
    serializer_class = LineSerializer

    def get_queryset(self):
        get_object_or_404(EpochSettlement, epoch=self.kwargs["epoch"])
        return (
            SettlementLine.objects.filter(epoch=self.kwargs["epoch"]).select_related("account").order_by("kind", "id")
        )


class MyLines(generics.ListAPIView):
    """The logged-in user's lines: their own wallet, nodes and checkers."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = LineSerializer

    def get_queryset(self):
        return queries.lines_for_user(self.request.user)

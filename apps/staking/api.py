"""Staking over REST. Reading is public; acting needs a session and acts
only on the caller's own wallet (delegations) or checkers (operators).
Amounts are integer micro-ATH as strings; rates are ppm integers."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.services import open_wallet
from apps.core import epochs
from apps.core.models import CheckerNode
from apps.platform.api_fields import MicroAthField, validated

from . import queries, services
from .models import RewardPeriod, SlashEvent, SlashImpact, UnbondingEntry


class CheckerSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="checker.pk")
    name = serializers.CharField(source="checker.name")
    operator = serializers.CharField(
        source="checker.operator.wallet.address", help_text="the operator's ledger address"
    )
    status = serializers.CharField(source="checker.status")
    total_stake = MicroAthField(source="checker.total_stake")
    self_stake = MicroAthField(source="checker.self_stake")
    commission_rate_ppm = serializers.IntegerField(source="checker.commission_rate")
    commission_max_rate_ppm = serializers.IntegerField(source="checker.commission_max_rate")
    commission_max_change_ppm = serializers.IntegerField(source="checker.commission_max_change")
    jailed_until_epoch = serializers.IntegerField(source="checker.jailed_until_epoch", allow_null=True)
    delegators = serializers.IntegerField()
    apr_ppm = serializers.IntegerField(allow_null=True)
    accuracy_ppm = serializers.IntegerField(allow_null=True)
    delivery_ppm = serializers.IntegerField(allow_null=True)
    slashes = serializers.IntegerField()
    slashed_total = MicroAthField()
    jailings = serializers.IntegerField()


class RewardPeriodSerializer(serializers.ModelSerializer):
    reward = MicroAthField()
    commission = MicroAthField()
    delegators_share = MicroAthField()
    eligible_stake = MicroAthField()
    cumulative_ratio = serializers.CharField(help_text=f"Reward per uATH x 10^{len(str(services.SCALE)) - 1}")
    height = serializers.IntegerField(source="tx.height", allow_null=True)

    class Meta:
        model = RewardPeriod
        fields = [
            "period",
            "epoch",
            "reward",
            "commission",
            "commission_rate",
            "delegators_share",
            "eligible_stake",
            "cumulative_ratio",
            "height",
        ]


class SlashEventSerializer(serializers.ModelSerializer):
    checker = serializers.CharField(source="checker.name")
    bonded_amount = MicroAthField()
    unbonding_amount = MicroAthField()
    redelegated_amount = MicroAthField()
    total_amount = MicroAthField()

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
        ]


class PositionSerializer(serializers.Serializer):
    checker_id = serializers.IntegerField(source="checker.pk")
    checker = serializers.CharField(source="checker.name")
    amount = MicroAthField()
    earning = MicroAthField()
    waiting = MicroAthField()
    earns_from_epoch = serializers.IntegerField(
        allow_null=True, help_text="Waiting stake earns from the epoch after this"
    )
    pending_reward = MicroAthField()


class UnbondingSerializer(serializers.ModelSerializer):
    checker_id = serializers.IntegerField()
    amount = MicroAthField()
    initial_amount = MicroAthField()

    class Meta:
        model = UnbondingEntry
        fields = ["id", "checker_id", "amount", "initial_amount", "creation_epoch", "maturity_epoch", "matured_epoch"]


class ImpactSerializer(serializers.ModelSerializer):
    slash = SlashEventSerializer()
    amount = MicroAthField()

    class Meta:
        model = SlashImpact
        fields = ["slash", "source", "amount"]


class AmountIn(serializers.Serializer):
    checker = serializers.IntegerField()
    amount = MicroAthField()


class RedelegateIn(serializers.Serializer):
    src = serializers.IntegerField()
    dst = serializers.IntegerField()
    amount = MicroAthField()


class ClaimIn(serializers.Serializer):
    checker = serializers.IntegerField(required=False, allow_null=True)


class ActivateIn(serializers.Serializer):
    name = serializers.CharField(max_length=80)
    self_stake = MicroAthField()
    commission_rate_ppm = serializers.IntegerField(min_value=0, max_value=1_000_000)
    commission_max_rate_ppm = serializers.IntegerField(min_value=0, max_value=1_000_000)


class CommissionIn(serializers.Serializer):
    rate_ppm = serializers.IntegerField(min_value=0, max_value=1_000_000)


def _checker(pk) -> CheckerNode:
    return get_object_or_404(CheckerNode, pk=pk)


class CheckerList(APIView):
    """Checkers with their record; operators activate new ones here."""

    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(
        parameters=[
            OpenApiParameter("sort", str, enum=list(queries.SORTS)),
            OpenApiParameter("status", str),
            OpenApiParameter("q", str),
        ],
        responses=CheckerSerializer(many=True),
    )
    def get(self, request):
        p = request.query_params
        rows = queries.checker_rows(
            sort=p.get("sort") or "stake", status=p.get("status") or "", q=(p.get("q") or "")[:80]
        )
        return Response(CheckerSerializer(rows, many=True).data)

    @extend_schema(request=ActivateIn, responses={201: CheckerSerializer})
    def post(self, request):
        data = validated(ActivateIn, request)
        checker = services.activate_checker(
            request.user,
            data["name"],
            data["self_stake"],
            commission_rate=data["commission_rate_ppm"],
            commission_max_rate=data["commission_max_rate_ppm"],
        )
        return Response(CheckerSerializer(queries.checker_row(checker)).data, status=status.HTTP_201_CREATED)


class CheckerDetail(APIView):
    @extend_schema(responses=CheckerSerializer)
    def get(self, request, pk):
        return Response(CheckerSerializer(queries.checker_row(_checker(pk))).data)


class CheckerRewards(APIView):
    """The checker's distributions, newest first (the F1 index history)."""

    @extend_schema(responses=RewardPeriodSerializer(many=True))
    def get(self, request, pk):
        rows = RewardPeriod.objects.filter(checker=_checker(pk)).select_related("tx").order_by("-period")[:200]
        return Response(RewardPeriodSerializer(rows, many=True).data)


class CheckerSlashes(APIView):
    @extend_schema(responses=SlashEventSerializer(many=True))
    def get(self, request, pk):
        rows = SlashEvent.objects.filter(checker=_checker(pk)).select_related("checker")[:200]
        return Response(SlashEventSerializer(rows, many=True).data)


class Commission(APIView):
    """The operator changes the commission (ppm)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=CommissionIn, responses=CheckerSerializer)
    def post(self, request, pk):
        data = validated(CommissionIn, request)
        checker = services.set_commission(request.user, _checker(pk), data["rate_ppm"])
        return Response(CheckerSerializer(queries.checker_row(checker)).data)


class Unjail(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses=CheckerSerializer)
    def post(self, request, pk):
        checker = services.unjail(request.user, _checker(pk))
        return Response(CheckerSerializer(queries.checker_row(checker)).data)


class MyStaking(APIView):
    """Your positions, pending rewards, unbonding entries and the slashes that touched you."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        wallet = open_wallet(request.user)
        positions = queries.positions(wallet)
        return Response(
            {
                "epoch": epochs.current_number(),
                "pending_rewards": str(sum(p.pending_reward for p in positions)),
                "positions": PositionSerializer(positions, many=True).data,
                "unbonding": UnbondingSerializer(
                    UnbondingEntry.objects.filter(delegator=wallet, matured_epoch__isnull=True), many=True
                ).data,
                "slashes": ImpactSerializer(
                    SlashImpact.objects.filter(delegator=wallet).select_related("slash", "slash__checker")[:100],
                    many=True,
                ).data,
            }
        )


class Delegate(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=AmountIn, responses={201: PositionSerializer(many=True)})
    def post(self, request):
        data = validated(AmountIn, request)
        services.delegate(request.user, _checker(data["checker"]), data["amount"])
        return Response(
            PositionSerializer(queries.positions(open_wallet(request.user)), many=True).data,
            status=status.HTTP_201_CREATED,
        )


class Undelegate(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=AmountIn, responses={201: UnbondingSerializer})
    def post(self, request):
        data = validated(AmountIn, request)
        entry = services.undelegate(request.user, _checker(data["checker"]), data["amount"])
        return Response(UnbondingSerializer(entry).data, status=status.HTTP_201_CREATED)


class Redelegate(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=RedelegateIn, responses={201: PositionSerializer(many=True)})
    def post(self, request):
        data = validated(RedelegateIn, request)
        services.redelegate(request.user, _checker(data["src"]), _checker(data["dst"]), data["amount"])
        return Response(
            PositionSerializer(queries.positions(open_wallet(request.user)), many=True).data,
            status=status.HTTP_201_CREATED,
        )


class Claim(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=ClaimIn, responses={200: OpenApiTypes.OBJECT})
    def post(self, request):
        data = validated(ClaimIn, request)
        checker = _checker(data["checker"]) if data.get("checker") else None
        paid = services.claim_rewards(request.user, checker)
        return Response({"paid": str(paid)})

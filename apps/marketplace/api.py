"""The marketplace over REST. Browsing and matching are public; renting,
rental actions and provider actions need a logged-in person and always act
as that person: no field names a renter or a provider, and another
person's rental or node answers 404. Amounts are micro-ATH strings."""

from django.core.paginator import InvalidPage
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from apps.core.models import GpuModel, GpuNode, Region, SlaTier
from apps.core.numbers import NumberError, parse_int
from apps.platform.api_fields import MicroAthField, page_size, validated

from . import catalogue, matching, providers, queries, rentals, workload_spec
from .billing import settled_summary
from .forms import CatalogueForm
from .models import CollateralSlash, Rental, RentalCharge, RentalMode, Workload
from .onboarding import NodeSpec, register_node
from .workload_templates import TEMPLATES


class OfferSerializer(serializers.ModelSerializer):
    gpu_model = serializers.CharField(source="gpu_model.slug")
    gpu_name = serializers.CharField(source="gpu_model.name")
    vram_gb = serializers.IntegerField(source="gpu_model.vram_gb")
    region = serializers.CharField(source="region.code")
    price_per_gpu_hour = MicroAthField()
    collateral = MicroAthField()
    required_collateral = MicroAthField()
    provider = serializers.CharField(source="provider.wallet.address", help_text="the provider's ledger address")
    # Plain strings: the enum names live with the monitoring API's schema.
    status = serializers.CharField(read_only=True)

    class Meta:
        model = GpuNode
        fields = [
            "id",
            "name",
            "provider",
            "gpu_model",
            "gpu_name",
            "vram_gb",
            "gpu_count",
            "vcpu",
            "ram_gb",
            "region",
            "bandwidth_mbps",
            "price_per_gpu_hour",
            "sla_tier",
            "status",
            "health_score",
            "paused",
            "collateral",
            "required_collateral",
        ]


class CataloguePages(BasePagination):
    """The catalogue's pages: ``next`` carries a cursor that continues after
    the page's last node (by its sort key and id), so a client walking the
    whole list pays for every page what it pays for the first, and sees each
    node once even while nodes are listed meanwhile. ``page=N`` (numbered,
    what ``previous`` links to) still works. A cursor this API did not give
    out, or gave out for another sort, is a 400; ``page_size`` is 1 to
    100."""

    page_size = 50
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        size = page_size(request.query_params.get("page_size"), default=self.page_size, maximum=self.max_page_size)
        try:
            number = parse_int(request.query_params.get("page") or 1, minimum=1, what="page number")
            self.page = catalogue.window(
                view.filters, number, request.query_params.get("cursor") or None, per_page=size, strict=True
            )[0]
        except catalogue.BadCursor:
            raise ValidationError(
                {"cursor": [_("This cursor is not one this API gave out for this sort: start again without it.")]}
            ) from None
        except (InvalidPage, NumberError):
            raise NotFound(_("Invalid page.")) from None
        ids = list(self.page.object_list)
        by_id = queryset.order_by().in_bulk(ids)
        return [by_id[pk] for pk in ids if pk in by_id]

    def get_paginated_response(self, data):
        url = self.request.build_absolute_uri()
        p = self.page
        return Response(
            {
                "count": p.paginator.count,
                "next": replace_query_param(remove_query_param(url, "page"), "cursor", p.next_cursor)
                if p.next_cursor
                else None,
                "next_cursor": p.next_cursor,
                "previous": replace_query_param(remove_query_param(url, "cursor"), "page", p.number - 1)
                if p.has_previous()
                else None,
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["count", "next", "next_cursor", "previous", "results"],
            "properties": {
                "count": {
                    "type": "integer",
                    "description": "how many nodes match, on every page (counted at most 10 seconds ago)",
                },
                "next": {"type": "string", "nullable": True, "format": "uri", "description": "null on the last page"},
                "next_cursor": {"type": "string", "nullable": True},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "next_cursor of the previous page (the next link carries it)",
                "schema": {"type": "string"},
            },
            {
                "name": "page",
                "in": "query",
                "required": False,
                "description": "a page number (skips the pages before it; prefer the next link)",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": "page_size",
                "in": "query",
                "required": False,
                "description": f"1 to {self.max_page_size} (default {self.page_size})",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]


class NodeList(generics.ListAPIView):
    """The catalogue: the same filters and sort as /marketplace/ (gpu,
    min_vram, count, region, near, max_price in ATH, min_health in %,
    availability=free|all, sort=price|-price|health|proximity|vram), in
    pages (see :class:`CataloguePages`)."""

    serializer_class = OfferSerializer
    permission_classes = [permissions.AllowAny]
    pagination_class = CataloguePages

    @extend_schema(parameters=[OpenApiParameter(n, str) for n in CatalogueForm.base_fields])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            # drf-spectacular asks for the queryset only to learn the model
            # while it builds /api/schema/; the form below reads the GPU
            # models and regions, and the schema must not cost a query.
            return GpuNode.objects.none()
        form = CatalogueForm(self.request.query_params)
        # The web page drops a bad filter so a shared link never errors; an
        # API client is told, rather than handed an unfiltered list.
        if not form.is_valid():
            raise ValidationError({k: [e["message"] for e in v] for k, v in form.errors.get_json_data().items()})
        self.filters = form.values()
        qs, _, _ = catalogue.nodes(self.filters)
        return qs.select_related("provider__wallet")


class NodeDetail(generics.RetrieveAPIView):
    serializer_class = OfferSerializer
    permission_classes = [permissions.AllowAny]
    queryset = GpuNode.objects.select_related("gpu_model", "region", "provider__wallet")


class MatchRequest(serializers.Serializer):
    gpu_model = serializers.SlugRelatedField(
        slug_field="slug", queryset=GpuModel.objects.all(), required=False, allow_null=True
    )
    min_vram_gb = serializers.IntegerField(required=False, min_value=0, allow_null=True)
    gpu_count = serializers.IntegerField(default=1, min_value=1)
    region = serializers.SlugRelatedField(
        slug_field="code", queryset=Region.objects.all(), required=False, allow_null=True
    )
    max_price_per_gpu_hour = MicroAthField(required=False, allow_null=True)
    max_latency_ms = serializers.IntegerField(required=False, min_value=1, allow_null=True)
    preference = serializers.ChoiceField(choices=matching.Preference.choices, default=matching.Preference.BALANCED)
    limit = serializers.IntegerField(default=5, min_value=1, max_value=50)


class PartSerializer(serializers.Serializer):
    name = serializers.CharField()
    score_ppm = serializers.IntegerField(source="score")
    weight_ppm = serializers.IntegerField(source="weight")
    points_ppm = serializers.IntegerField(source="points")
    detail = serializers.CharField()


class CandidateSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    total_ppm = serializers.IntegerField(source="total")
    why = serializers.CharField()
    distance_km = serializers.IntegerField()
    rtt_ms = serializers.IntegerField()
    cost_per_hour = MicroAthField()
    parts = PartSerializer(many=True)
    node = OfferSerializer()


class MatchResponse(serializers.Serializer):
    count = serializers.IntegerField(help_text="How many nodes met the requirements")
    preference = serializers.CharField()
    weights_ppm = serializers.DictField(child=serializers.IntegerField())
    candidates = CandidateSerializer(many=True)


class Match(APIView):
    """Ask the scheduler: the top candidates, each with its score breakdown."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(request=MatchRequest, responses={200: MatchResponse})
    def post(self, request):
        d = validated(MatchRequest, request)
        req = matching.Requirements(
            gpu_model=d.get("gpu_model"),
            min_vram_gb=d.get("min_vram_gb"),
            gpu_count=d["gpu_count"],
            region=d.get("region"),
            max_price_per_gpu_hour=d.get("max_price_per_gpu_hour"),
            max_latency_ms=d.get("max_latency_ms"),
            preference=d["preference"],
            renter=request.user if request.user.is_authenticated else None,
        )
        result = matching.match(req, limit=d["limit"])
        return Response(
            {
                "count": result["count"],
                "preference": result["preference"],
                "weights_ppm": result["weights"],
                "candidates": CandidateSerializer(result["candidates"], many=True).data,
            }
        )


class ChargeSerializer(serializers.ModelSerializer):
    charge = MicroAthField()
    fee = MicroAthField()
    provider_amount = MicroAthField()
    refunded = MicroAthField()
    sla_credit = MicroAthField()

    class Meta:
        model = RentalCharge
        fields = [
            "epoch",
            "outcome",
            "charge",
            "fee",
            "provider_amount",
            "refunded",
            "sla_credit",
            "reason",
            "uptime_ppm",
            "latency_ms",
            "tx_height",
        ]


class RentalSerializer(serializers.ModelSerializer):
    node = serializers.IntegerField(source="node_id")
    node_name = serializers.CharField(source="node.name")
    price_per_gpu_hour = MicroAthField()
    price_per_epoch = MicroAthField()
    escrow_total = MicroAthField()
    escrow_left = MicroAthField()
    released = MicroAthField()
    refunded = MicroAthField()
    carried_out = MicroAthField()
    replaces = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    renter_region = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    status = serializers.CharField(read_only=True, help_text="active, ended or replaced")

    class Meta:
        model = Rental
        fields = [
            "id",
            "node",
            "node_name",
            "gpu_count",
            "mode",
            "image",
            "status",
            "end_reason",
            "start_epoch",
            "end_epoch",
            "settled_through",
            "epoch_seconds",
            "price_per_gpu_hour",
            "price_per_epoch",
            "escrow_total",
            "escrow_left",
            "released",
            "refunded",
            "carried_out",
            "auto_replace",
            "renter_region",
            "replaces",
            "last_failure_epoch",
            "created_at",
            "ended_at",
        ]


class EnvVarSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField(help_text="a secret's value is masked")
    secret = serializers.BooleanField()


class WorkloadSerializer(serializers.ModelSerializer):
    """What the rental runs and how it stands; secret values are masked."""

    env = serializers.SerializerMethodField()

    class Meta:
        model = Workload
        fields = [
            "template",
            "command",
            "ports",
            "env",
            "state",
            "exit_code",
            "reason",
            "endpoints",
            "log_tail",
            "state_changed_at",
            "reported_at",
        ]

    @extend_schema_field(EnvVarSerializer(many=True))
    def get_env(self, obj) -> list:
        return workload_spec.public_env(obj.env)


class RentalDetailSerializer(RentalSerializer):
    charges = ChargeSerializer(many=True)
    workload = WorkloadSerializer(read_only=True, allow_null=True)

    class Meta(RentalSerializer.Meta):
        fields = [*RentalSerializer.Meta.fields, "charges", "workload"]


class RentRequest(serializers.Serializer):
    node = serializers.IntegerField()
    mode = serializers.ChoiceField(choices=RentalMode.choices)
    template = serializers.ChoiceField(
        choices=[t.slug for t in TEMPLATES], required=False, help_text="fills in what is not given below"
    )
    image = serializers.CharField(max_length=255, required=False)
    command = serializers.JSONField(required=False, help_text="argv list, or one line split like a shell")
    env = serializers.JSONField(
        required=False, help_text='[{"name", "value", "secret"}] or {"NAME": "value"}; secret values never come back'
    )
    ports = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=16)
    epochs = serializers.IntegerField(required=False, min_value=1, help_text="reserved: how many epochs")
    hours = serializers.IntegerField(required=False, min_value=1, help_text="reserved: or how many hours")
    escrow = MicroAthField(required=False, help_text="on-demand: escrow to start with")
    auto_replace = serializers.BooleanField(default=False)
    region = serializers.SlugRelatedField(
        slug_field="code", queryset=Region.objects.all(), required=False, allow_null=True
    )
    expected_price_per_epoch = MicroAthField(
        required=False, help_text="refuse if the price is no longer this (from a quote)"
    )
    quote_only = serializers.BooleanField(default=False, help_text="return the cost without renting")


class QuoteSerializer(serializers.Serializer):
    node = serializers.IntegerField(source="node.pk")
    mode = serializers.CharField()
    epoch_seconds = serializers.IntegerField()
    price_per_epoch = MicroAthField()
    epochs = serializers.IntegerField()
    escrow = MicroAthField()
    start_epoch = serializers.IntegerField()
    end_epoch = serializers.IntegerField()
    available = MicroAthField()
    affordable = serializers.BooleanField()


class RentalList(generics.ListAPIView):
    """Your rentals, newest first. POST rents a node (or, with
    ``quote_only``, returns what it would cost)."""

    serializer_class = RentalSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        return Rental.objects.filter(renter=self.request.user).select_related("node", "renter_region")

    @extend_schema(request=RentRequest, responses={201: RentalDetailSerializer, 200: QuoteSerializer})
    def post(self, request):
        d = validated(RentRequest, request)
        n = d.get("epochs")
        if n is None and d.get("hours"):
            n = rentals.hours_to_epochs(d["hours"])
        if d["quote_only"]:
            node = get_object_or_404(GpuNode, pk=d["node"])
            q = rentals.quote(request.user, node, mode=d["mode"], epochs_=n, escrow=d.get("escrow"))
            return Response(QuoteSerializer(q).data)
        workload = workload_spec.from_request(
            template=d.get("template", ""),
            image=d.get("image", ""),
            command=d.get("command"),
            env=d.get("env"),
            ports=d.get("ports"),
        )
        rental = rentals.rent(
            request.user,
            d["node"],
            mode=d["mode"],
            workload=workload,
            epochs_=n,
            escrow=d.get("escrow"),
            auto_replace=d["auto_replace"],
            renter_region=d.get("region"),
            expected_price_per_epoch=d.get("expected_price_per_epoch"),
        )
        return Response(RentalDetailSerializer(rental).data, status=status.HTTP_201_CREATED)


class RentalDetail(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=RentalDetailSerializer)
    def get(self, request, pk):
        rental = queries.my_rental(request.user, pk)
        data = RentalDetailSerializer(rental).data
        data["summary"] = {
            k: str(v) if k not in ("failed", "epochs") else v for k, v in settled_summary(rental).items()
        }
        return Response(data)


class RentalEnd(APIView):
    """End now; the unserved time is refunded at once."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses=RentalSerializer)
    def post(self, request, pk):
        rental = queries.my_rental(request.user, pk)
        refund = rentals.end_rental(request.user, rental.pk)
        rental.refresh_from_db()
        return Response({**RentalSerializer(rental).data, "refund": str(refund)})


class AmountRequest(serializers.Serializer):
    amount = MicroAthField()


class RentalTopUp(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=AmountRequest, responses=RentalSerializer)
    def post(self, request, pk):
        rental = queries.my_rental(request.user, pk)
        amount = validated(AmountRequest, request)["amount"]
        rental = rentals.top_up(request.user, rental.pk, amount)
        return Response(RentalSerializer(rental).data)


class ReplaceRequest(serializers.Serializer):
    node = serializers.IntegerField()


class RentalReplace(APIView):
    """Move a rental whose node failed to another node (escrow carried over)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=ReplaceRequest, responses={201: RentalSerializer})
    def post(self, request, pk):
        rental = queries.my_rental(request.user, pk)
        new = rentals.replace(request.user, rental.pk, validated(ReplaceRequest, request)["node"])
        return Response(RentalSerializer(new).data, status=status.HTTP_201_CREATED)


# --- Providers ------------------------------------------------------------------


class RegisterRequest(serializers.Serializer):
    name = serializers.CharField(max_length=80)
    gpu_model = serializers.SlugRelatedField(slug_field="slug", queryset=GpuModel.objects.all())
    gpu_count = serializers.IntegerField(min_value=1)
    vcpu = serializers.IntegerField(min_value=1, max_value=1024)
    ram_gb = serializers.IntegerField(min_value=1, max_value=65536)
    region = serializers.SlugRelatedField(slug_field="code", queryset=Region.objects.all())
    bandwidth_mbps = serializers.IntegerField(min_value=1, max_value=1_000_000)
    price_per_gpu_hour = MicroAthField()
    endpoint = serializers.URLField(max_length=200)
    sla_tier = serializers.ChoiceField(choices=SlaTier.choices, default=SlaTier.STANDARD)


class ProviderNodeSerializer(OfferSerializer):
    offline_since_epoch = serializers.IntegerField(allow_null=True)
    withdraw_from_epoch = serializers.SerializerMethodField()

    class Meta(OfferSerializer.Meta):
        fields = [*OfferSerializer.Meta.fields, "endpoint", "offline_since_epoch", "withdraw_from_epoch"]

    def get_withdraw_from_epoch(self, node) -> int | None:
        return providers.withdraw_available_at(node)


class ProviderNodeList(generics.ListAPIView):
    """Your nodes. POST registers one (floor + collateral lock) and returns
    its agent token, once."""

    serializer_class = ProviderNodeSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        return GpuNode.objects.filter(provider=self.request.user).select_related(
            "gpu_model", "region", "provider__wallet"
        )

    @extend_schema(request=RegisterRequest, responses={201: ProviderNodeSerializer})
    def post(self, request):
        node, token = register_node(request.user, NodeSpec.from_input(validated(RegisterRequest, request)))
        return Response({**ProviderNodeSerializer(node).data, "agent_token": token}, status=status.HTTP_201_CREATED)


class ProviderNodeDetail(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=ProviderNodeSerializer)
    def get(self, request, pk):
        return Response(ProviderNodeSerializer(queries.my_node(request.user, pk)).data)


class ProviderTopUp(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=AmountRequest, responses=ProviderNodeSerializer)
    def post(self, request, pk):
        node = queries.my_node(request.user, pk)
        amount = validated(AmountRequest, request)["amount"]
        node = providers.top_up_collateral(request.user, node.pk, amount)
        return Response(ProviderNodeSerializer(queries.my_node(request.user, node.pk)).data)


class ProviderOffline(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses=ProviderNodeSerializer)
    def post(self, request, pk):
        node = queries.my_node(request.user, pk)
        providers.take_offline(request.user, node.pk)
        return Response(ProviderNodeSerializer(queries.my_node(request.user, pk)).data)


class ProviderWithdraw(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses=ProviderNodeSerializer)
    def post(self, request, pk):
        node = queries.my_node(request.user, pk)
        amount = providers.withdraw_collateral(request.user, node.pk)
        return Response({**ProviderNodeSerializer(queries.my_node(request.user, pk)).data, "withdrawn": str(amount)})


class SlashSerializer(serializers.ModelSerializer):
    amount = MicroAthField()
    node_name = serializers.CharField(source="node.name")

    class Meta:
        model = CollateralSlash
        fields = ["node", "node_name", "epoch", "kind", "amount", "reason", "rental", "tx_height", "created_at"]


class EpochEarningsSerializer(serializers.Serializer):
    epoch = serializers.IntegerField()
    earned = MicroAthField()
    sla_credits = MicroAthField()
    capacity_rewards = MicroAthField()


class EarningsSerializer(serializers.Serializer):
    totals = serializers.DictField(child=MicroAthField())
    per_epoch = EpochEarningsSerializer(many=True)
    slashes = SlashSerializer(many=True)


class ProviderEarnings(APIView):
    """Your rental earnings and capacity rewards per epoch, and your slashes
    with their reasons."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=EarningsSerializer)
    def get(self, request):
        d = providers.dashboard(request.user)
        return Response(
            {
                "totals": {k: str(v) for k, v in d["totals"].items()},
                "per_epoch": [
                    {"epoch": e, "earned": str(a), "sla_credits": str(c), "capacity_rewards": str(r)}
                    for e, a, c, r in d["earnings_uath"]
                ],
                "slashes": SlashSerializer(d["slashes"], many=True).data,
            }
        )

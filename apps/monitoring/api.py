"""Agent endpoints (token per agent) and the public monitoring API."""

import json
from functools import lru_cache, wraps
from types import SimpleNamespace

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import checkpoints, epochs, jsonlimits, parameters
from apps.core.errors import Refused
from apps.core.models import CheckerNode, GpuNode
from apps.core.numbers import parse_int
from apps.marketplace import workloads
from apps.platform.throttles import WindowThrottle

from . import api_schema, assignment, auth, challenge_tickets, ingest, queries
from .auth import AgentTokenAuthentication, IsCheckerAgent, IsNodeAgent
from .models import Assignment, CheckerReport, NodeEpoch


class AgentThrottle(WindowThrottle):
    """Per agent token, so one runaway agent cannot starve the others. Reads
    only ``request.auth`` (the heartbeats' fast path passes just that, as
    to ``IsNodeAgent``)."""

    scope = "agent"

    def ident(self, request, view) -> str:
        return str(request.auth.pk)


def network_key_hex() -> str:
    """The network's public key, which signs challenge tickets (and ledger
    checkpoints); empty where none is configured, and then nodes compute
    every challenge as before."""
    try:
        return checkpoints.public_key_hex()
    except ImproperlyConfigured:
        return ""


@lru_cache(maxsize=65_536)
def challenge_ticket(epoch: int, node: int, checker: int, checker_key: str) -> dict | None:
    """The ticket that lets ``checker`` challenge ``node`` in ``epoch``
    (challenge_tickets.py); cached, since checkers ask for their
    assignments again and again within an epoch."""
    if not network_key_hex():
        return None
    return challenge_tickets.issue(checkpoints.signing_key(), epoch, node, checker, checker_key)


class AgentView(APIView):
    authentication_classes = [AgentTokenAuthentication]
    throttle_classes = [AgentThrottle]


class AgentMe(AgentView):
    """Who this token acts for, and the epoch clock."""

    permission_classes = [IsNodeAgent | IsCheckerAgent]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        token = request.auth
        current = epochs.current()
        data = {
            "epoch": current.number,
            "epoch_start": current.start,
            "epoch_end": current.end,
            "epoch_seconds": int(epochs.length().total_seconds()),
        }
        if token.node_id:
            node = token.node
            # With it, the node's agent computes only ticketed challenges.
            data["network_key"] = network_key_hex()
            data["node"] = {
                "id": node.pk,
                "name": node.name,
                "gpu_model": node.gpu_model.name,
                "gpu_count": node.gpu_count,
                "vram_gb": node.gpu_model.vram_gb,
                "bandwidth_mbps": node.bandwidth_mbps,
                "endpoint": node.endpoint,
                "status": node.status,
            }
        else:
            data["checker"] = {
                "id": token.checker_id,
                "name": token.checker.name,
                "status": token.checker.status,
                "has_key": bool(token.checker.public_key),
            }
        return Response(data)


class AgentHeartbeats(AgentView):
    """A provider agent posts a batch of GPU telemetry samples for its node."""

    permission_classes = [IsNodeAgent]
    # The hottest request there is: the token comes from this process's
    # cache (auth.agent_token), and the insert itself requires that it still
    # acts for the node, and records its use.
    token_cache = True

    @extend_schema(request=api_schema.HeartbeatBatch, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        batch = ingest.parse_heartbeats(request.auth.node_id, request.data)
        return Response(self.store(request.auth, batch), status=status.HTTP_201_CREATED)

    @staticmethod
    def store(token, batch: ingest.HeartbeatBatch) -> dict:
        """Store the batch for the token's node; the answer's body."""
        try:
            ingest.store_heartbeats(batch, token_id=token.pk, token_used_at=token.used_at)
        except ingest.TokenRevoked:
            auth.forget(token.pk)
            raise exceptions.AuthenticationFailed("Unknown agent token.") from None
        answer = {"stored": batch.count}
        if batch.facts_ignored:
            answer["facts_ignored"] = batch.facts_ignored
        return answer

    @classmethod
    def as_view(cls, **initkwargs):
        view = super().as_view(**initkwargs)
        cls._headers = cls(**initkwargs).default_response_headers

        @wraps(view)  # keeps what the schema and the CSRF check read (cls, csrf_exempt)
        def heartbeats(request, *args, **kwargs):
            answer = cls.fast(request)
            return view(request, *args, **kwargs) if answer is None else answer

        return heartbeats

    @classmethod
    def fast(cls, request) -> HttpResponse | None:
        """An agent's batch, stored and answered without DRF's request and
        response machinery, which cost more than the rest of the request (see
        bench/ingest.py); ``None`` lets the view above answer instead, as it
        answers anything else: another method, content type, charset or
        Accept header, a query string (``?format=``), a token that is not a
        node agent's, a throttled agent, a refused batch (each with the
        status and message it always had). The same checks, in the same
        functions: the token (``auth.agent_token``), the permission and
        throttle classes, the JSON limits (``jsonlimits``), the batch
        (``ingest.parse_heartbeats``).
        The throttle counts the request only once the batch is known good,
        and nothing is written before, so a request handed on is judged
        afresh, and counted once."""
        if (
            request.method != "POST"
            or request.GET
            or request.content_type != "application/json"
            or request.encoding not in (None, "utf-8", "UTF-8")
            or not _accepts_json(request.META.get("HTTP_ACCEPT", "*/*"))
            or not 0 < _content_length(request) <= jsonlimits.max_bytes()
        ):
            return None
        try:
            token = auth.agent_token(request, cached=cls.token_cache)
            # What the permission and throttle classes read.
            agent = SimpleNamespace(auth=token)
            if token is None or not all(p().has_permission(agent, None) for p in cls.permission_classes):
                return None
            batch = ingest.parse_heartbeats(token.node_id, jsonlimits.loads(request.body))
        except (exceptions.AuthenticationFailed, jsonlimits.JSONLimitError, ingest.IngestError):
            return None
        if not all(throttle().allow_request(agent, None) for throttle in cls.throttle_classes):
            return None
        try:
            answer = cls.store(token, batch)
        except exceptions.AuthenticationFailed:
            return None
        response = HttpResponse(
            json.dumps(answer, separators=(",", ":")), status=status.HTTP_201_CREATED, content_type="application/json"
        )
        # As DRF's answer has them (Allow, Vary).
        for name, value in cls._headers.items():
            response[name] = value
        return response


def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _accepts_json(accept: str) -> bool:
    """Whether DRF's negotiation would pick plain JSON for this Accept header
    (anything else, a browser's or one asking for indented JSON, goes
    through DRF)."""
    for part in accept.split(","):
        media, *params = part.split(";")
        if media.strip() not in ("*/*", "application/*", "application/json"):
            return False
        if any(not p.strip().startswith("q=") for p in params):
            return False
    return True


class AgentKey(AgentView):
    """A checker agent registers the Ed25519 public key its reports are signed with."""

    permission_classes = [IsCheckerAgent]

    @extend_schema(request=api_schema.AgentKeyRequest, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        ingest.register_key(
            request.auth.checker, request.data.get("public_key") if isinstance(request.data, dict) else None
        )
        return Response({"public_key": request.data["public_key"]})


class AgentAssignments(AgentView):
    """The nodes this checker must probe in the current (or a named) epoch.

    Read only: the scheduler fixes each epoch's round when the epoch starts.
    Until it has, ``round_fixed`` is false and the list is empty; the agent
    asks again shortly.

    An assignment of a node rented in that epoch carries its ``workload``
    (see ``apps.marketplace.workloads.workload_targets``): the lease, whether
    it runs, and the endpoints the node's agent last reported, which the
    checker probes too."""

    permission_classes = [IsCheckerAgent]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        checker = request.auth.checker
        current = epochs.current_number()
        try:
            number = parse_int(request.query_params.get("epoch", str(current)), what="epoch")
        except ValueError:
            raise Refused("epoch must be an integer.") from None
        if number > current or number < 0:
            raise Refused(f"Epoch {number} has not started (current: {current}).")
        e = epochs.epoch(number)
        p = parameters.current(number)
        rows = (
            Assignment.objects.filter(epoch=number, checker=checker)
            .select_related("node", "node__gpu_model")
            .order_by("node_id")
        )
        reported = set(CheckerReport.objects.filter(epoch=number, checker=checker).values_list("node_id", flat=True))
        rented = workloads.workload_targets(
            Assignment.objects.filter(epoch=number, checker=checker).values("node_id"), number
        )
        return Response(
            {
                "epoch": number,
                "epoch_start": e.start,
                "epoch_end": e.end,
                "checker": checker.pk,
                "checker_status": checker.status,
                "round_fixed": assignment.round_fixed(number),
                # The compute challenge each probe of the epoch may run (docs/challenges.md).
                "challenge": challenge_config(number, p),
                # The download each checker times once per node (0: none).
                "speed_test_kib": p["speed_test_kib"],
                "assignments": [
                    {
                        "node": a.node_id,
                        "endpoint": a.node.endpoint,
                        "gpu_model": a.node.gpu_model.name,
                        "gpu_count": a.node.gpu_count,
                        "vram_gb": a.node.gpu_model.vram_gb,
                        "gpu_tflops": str(a.node.gpu_model.fp32_tflops),
                        "reported": a.node_id in reported,
                        # Lets this checker's compute challenges through to the node.
                        "ticket": challenge_ticket(number, a.node_id, checker.pk, checker.public_key)
                        if checker.public_key
                        else None,
                        **({"workload": rented[a.node_id]} if a.node_id in rented else {}),
                    }
                    for a in rows
                ],
            }
        )


def challenge_config(epoch: int, p: dict | None = None) -> dict:
    p = p or parameters.current(epoch)
    return {
        "n": p["challenge_n"],
        "rows": p["challenge_rows"],
        "slack": p["challenge_slack"],
        "grace_ms": p["challenge_grace_ms"],
    }


class AgentReports(AgentView):
    """One signed report per assignment; resending the same report is a no-op."""

    permission_classes = [IsCheckerAgent]

    @extend_schema(request=api_schema.SignedReport, responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT})
    def post(self, request):
        checker = request.auth.checker
        report, created = ingest.submit_report(checker, request.data)
        return Response(
            {"id": report.pk, "epoch": report.epoch, "node": report.node_id, "created": created},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class AgentReportBatch(AgentView):
    """Several signed reports in one request (a checker's whole epoch), so a
    busy network costs one request per checker rather than one per node.

    Each report is judged on its own, exactly as ``POST /api/agent/reports/``
    would: the answer lists, per report, ``created``, ``unchanged`` or the
    refusal (with its HTTP status and message). A malformed batch is a 400
    and writes nothing."""

    permission_classes = [IsCheckerAgent]

    @extend_schema(request=api_schema.ReportBatch, responses={200: OpenApiTypes.OBJECT})
    def post(self, request):
        reports = request.data.get("reports") if isinstance(request.data, dict) else None
        results = ingest.submit_reports(request.auth.checker, reports)
        return Response({"results": results})


class AgentLeases(AgentView):
    """The leases (rentals' workloads) this node's agent should be running
    now, with what it needs to start each: image, command, environment
    (secret values included: only the node's own token gets them), ports to
    expose, and the node's GPUs, cores and memory to allow."""

    permission_classes = [IsNodeAgent]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        node = request.auth.node
        return Response({"node": node.pk, "leases": workloads.desired_leases(node)})


class AgentLeaseStatus(AgentView):
    """The agent reports its leases' states: ``{"leases": [{"lease", "state",
    "exit_code", "reason", "endpoints", "log_tail"}]}``, at most
    ``MAX_LEASES_PER_REPORT`` at once. Each is judged on its own; the answer
    lists, per lease, its status (200, or the refusal's) and a message."""

    permission_classes = [IsNodeAgent]

    @extend_schema(request=api_schema.LeaseStatusBatch, responses={200: OpenApiTypes.OBJECT})
    def post(self, request):
        reports = request.data.get("leases") if isinstance(request.data, dict) else None
        if not isinstance(reports, list) or not 1 <= len(reports) <= api_schema.MAX_LEASES_PER_REPORT:
            raise Refused(f"leases is a list of 1 to {api_schema.MAX_LEASES_PER_REPORT} lease reports.")
        node = request.auth.node
        results = []
        for report in reports:
            lease = report.get("lease") if isinstance(report, dict) else None
            try:
                workload = workloads.record_status(node, report)
            except workloads.LeaseError as exc:
                results.append({"lease": lease, "status": exc.status, "detail": str(exc)})
            else:
                results.append({"lease": lease, "status": 200, "detail": workload.state})
        return Response({"results": results})


# --- Public, read-only ------------------------------------------------------------


class NodeSerializer(serializers.ModelSerializer):
    gpu_model = serializers.CharField(source="gpu_model.name")
    region = serializers.CharField(source="region.code")
    price_per_gpu_hour = serializers.SerializerMethodField()
    # Annotated by the views (``queries.with_last_heartbeat``).
    last_heartbeat_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = GpuNode
        fields = [
            "id",
            "name",
            "gpu_model",
            "gpu_count",
            "region",
            "status",
            "health_score",
            "price_per_gpu_hour",
            "last_heartbeat_at",
            "epochs_below_cutoff",
        ]

    def get_price_per_gpu_hour(self, obj) -> str:
        return str(obj.price_per_gpu_hour)


class NodeEpochSerializer(serializers.ModelSerializer):
    class Meta:
        model = NodeEpoch
        exclude = ["id", "node"]


class OverviewView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return Response(queries.overview())


class NodeList(generics.ListAPIView):
    permission_classes = [AllowAny]
    serializer_class = NodeSerializer
    queryset = queries.with_last_heartbeat(GpuNode.objects.select_related("gpu_model", "region").order_by("id"))


class NodeDetail(generics.RetrieveAPIView):
    permission_classes = [AllowAny]
    serializer_class = NodeSerializer
    queryset = queries.with_last_heartbeat(GpuNode.objects.select_related("gpu_model", "region"))


class NodeEpochs(generics.ListAPIView):
    """Consensus and telemetry per epoch for one node, newest first."""

    permission_classes = [AllowAny]
    serializer_class = NodeEpochSerializer

    def get_queryset(self):
        node = get_object_or_404(GpuNode, pk=self.kwargs["pk"])
        return NodeEpoch.objects.filter(node=node).order_by("-epoch")


class AssignmentVerify(APIView):
    """Recompute an epoch's checker assignments from its participants."""

    permission_classes = [AllowAny]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, epoch: int):
        return Response(assignment.verify(epoch))


class CheckerEpochs(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, pk: int):
        checker = get_object_or_404(CheckerNode, pk=pk)
        return Response(queries.checker_history(checker))

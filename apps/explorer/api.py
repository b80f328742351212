"""The public ledger over REST: transactions, accounts and their history,
the summary, a full verification, and the signed checkpoints an auditor
saves today to catch a rewritten history tomorrow
(``verify_ledger --against``)."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.models import Account, LedgerTransaction
from apps.core.verify import verify_ledger

from . import queries
from . import serializers as s
from .serializers import SignedCheckpointSerializer


class CheckpointPages(PageNumberPagination):
    # Saving every checkpoint should take a few requests, not thousands.
    page_size = 500


class CheckpointList(generics.ListAPIView):
    """Signed checkpoints of the ledger, newest first.

    Each signs the canonical JSON of format, epoch, height, head hash, genesis
    hash, supply and signing time (keys sorted, no spaces). Save this list;
    ``manage.py verify_ledger --against FILE`` later proves whether history up
    to any saved height was rewritten.
    """

    serializer_class = SignedCheckpointSerializer
    pagination_class = CheckpointPages

    def get_queryset(self):
        return queries.signed_checkpoints()


class CheckpointLatest(generics.GenericAPIView):
    """The newest signed checkpoint (404 before the first settled epoch)."""

    serializer_class = SignedCheckpointSerializer

    @extend_schema(responses=SignedCheckpointSerializer)
    def get(self, request):
        latest = queries.signed_checkpoints().first()
        if latest is None:
            raise NotFound("No epoch has been settled yet.")
        return Response(self.get_serializer(latest).data)


class TransactionList(generics.ListAPIView):
    """Latest ledger transactions, newest first."""

    serializer_class = s.TransactionSerializer

    @extend_schema(parameters=[OpenApiParameter("kind", str, description="Only this kind of transaction")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return queries.transactions(self.request.query_params.get("kind") or None)


class TransactionDetail(generics.RetrieveAPIView):
    """One transaction with its legs; enough to recompute its hash."""

    serializer_class = s.TransactionDetailSerializer

    def get_object(self):
        try:
            return queries.transaction_detail(self.kwargs["height"])
        except LedgerTransaction.DoesNotExist:
            raise Http404 from None


class AccountList(generics.ListAPIView):
    serializer_class = s.AccountSerializer

    @extend_schema(parameters=[OpenApiParameter("q", str, description="Address or name contains")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return queries.accounts((self.request.query_params.get("q") or "")[:64])


class AccountDetail(generics.RetrieveAPIView):
    serializer_class = s.AccountSerializer
    lookup_field = "address"
    queryset = Account.objects.select_related("owner")


class AccountEntries(generics.ListAPIView):
    """An account's history: every leg that touched it, newest first."""

    serializer_class = s.AccountEntrySerializer

    def get_queryset(self):
        account = get_object_or_404(Account, address=self.kwargs["address"])
        return queries.account_history(account)


class LedgerSummary(APIView):
    @extend_schema(responses=s.SummarySerializer)
    def get(self, request):
        return Response(s.SummarySerializer(queries.summary()).data)


class LedgerVerify(APIView):
    """Recompute the hash chain and check every invariant."""

    @extend_schema(responses=s.VerifySerializer)
    def get(self, request):
        report = verify_ledger()
        data = {
            "ok": report.ok,
            "transactions": report.transactions,
            "entries": report.entries,
            "accounts": report.accounts,
            "supply": report.supply,
            "height": report.height,
            "first_bad_height": report.first_bad_height,
            "problems": [{"height": p.height, "message": p.message} for p in report.problems],
        }
        return Response(s.VerifySerializer(data).data)

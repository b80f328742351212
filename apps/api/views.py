"""REST endpoints. Read-only ledger data for everyone; wallet actions for
the logged-in owner only. Views stay thin: the services do the work."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from apps.accounts import services as wallet_services
from apps.accounts import throttle as wallet_throttle
from apps.core.models import Account, LedgerTransaction
from apps.core.verify import verify_ledger
from apps.explorer import queries

from . import serializers as s


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


class Wallet(APIView):
    """The logged-in user's wallet."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=s.WalletSerializer)
    def get(self, request):
        wallet = wallet_services.open_wallet(request.user)
        return Response(
            s.WalletSerializer({"account": wallet, "faucet": wallet_services.faucet_status(wallet)}).data
        )


def _wallet_error(exc) -> ValidationError:
    return ValidationError({"detail": str(exc)})


class Faucet(APIView):
    """Claim demo ATH into your wallet (limited per day)."""

    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "faucet"

    @extend_schema(request=None, responses={201: s.TransactionDetailSerializer})
    def post(self, request):
        try:
            # Limited per client address too (across accounts), as on the wallet page.
            tx = wallet_throttle.claim_faucet(request)
        except wallet_services.WalletError as exc:
            raise _wallet_error(exc) from None
        except wallet_throttle.Refused as exc:
            raise Throttled(wait=exc.retry, detail=str(exc)) from None
        return Response(
            s.TransactionDetailSerializer(queries.transaction_detail(tx.height)).data, status=status.HTTP_201_CREATED
        )


class Send(APIView):
    """Send ATH from your available balance to another wallet."""

    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "transfer"

    @extend_schema(request=s.SendSerializer, responses={201: s.TransactionDetailSerializer})
    def post(self, request):
        payload = s.SendSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            tx = wallet_services.send(request.user, data["to_address"], data["amount"], data["memo"])
        except wallet_services.WalletError as exc:
            raise _wallet_error(exc) from None
        return Response(
            s.TransactionDetailSerializer(queries.transaction_detail(tx.height)).data, status=status.HTTP_201_CREATED
        )

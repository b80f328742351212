"""The logged-in person's wallet over REST: balances, the demo faucet and
sending. A refused action propagates to the API's exception handler."""

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import Throttled
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.explorer import queries
from apps.explorer.serializers import TransactionDetailSerializer
from apps.platform.api_fields import validated
from apps.platform.throttles import ScopedThrottle

from . import services, throttle
from .serializers import SendSerializer, WalletSerializer


class Wallet(APIView):
    """The logged-in user's wallet."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=WalletSerializer)
    def get(self, request):
        wallet = services.open_wallet(request.user)
        return Response(WalletSerializer({"account": wallet, "faucet": services.faucet_status(wallet)}).data)


class Faucet(APIView):
    """Claim demo ATH into your wallet (limited per day)."""

    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "faucet"

    @extend_schema(request=None, responses={201: TransactionDetailSerializer})
    def post(self, request):
        try:
            # Limited per client address too (across accounts), as on the wallet page.
            tx = throttle.claim_faucet(request)
        except throttle.Refused as exc:
            raise Throttled(wait=exc.retry, detail=str(exc)) from None
        return Response(
            TransactionDetailSerializer(queries.transaction_detail(tx.height)).data, status=status.HTTP_201_CREATED
        )


class Send(APIView):
    """Send ATH from your available balance to another wallet."""

    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "transfer"

    @extend_schema(request=SendSerializer, responses={201: TransactionDetailSerializer})
    def post(self, request):
        data = validated(SendSerializer, request)
        tx = services.send(request.user, data["to_address"], data["amount"], data["memo"])
        return Response(
            TransactionDetailSerializer(queries.transaction_detail(tx.height)).data, status=status.HTTP_201_CREATED
        )

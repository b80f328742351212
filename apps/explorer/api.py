"""The ledger's signed checkpoints over REST: what an auditor saves today to
catch a rewritten history tomorrow (``verify_ledger --against``)."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from apps.core import checkpoints

from . import queries


class SignedCheckpointSerializer(serializers.Serializer):
    format = serializers.CharField()
    epoch = serializers.IntegerField()
    height = serializers.IntegerField()
    head_hash = serializers.CharField()
    genesis_hash = serializers.CharField()
    supply = serializers.CharField(help_text="uATH, as a string")
    signed_at = serializers.CharField()
    public_key = serializers.CharField(help_text="Ed25519 public key, hex")
    signature = serializers.CharField(help_text="Ed25519 signature of the canonical statement, hex")

    def to_representation(self, instance):
        return checkpoints.as_published(instance)


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
            return Response({"detail": "No epoch has been settled yet."}, status=404)
        return Response(self.get_serializer(latest).data)

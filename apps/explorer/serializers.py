"""What the public ledger API answers with: accounts, transactions and
their legs, the ledger summary, the verification report and the signed
checkpoints."""

from rest_framework import serializers

from apps.core import checkpoints
from apps.core.amounts import format_uath
from apps.core.models import Account, Entry, LedgerTransaction
from apps.platform.api_fields import MicroAthField


class BalancesMixin(serializers.Serializer):
    available = MicroAthField()
    escrowed = MicroAthField()
    collateral = MicroAthField()
    bonded = MicroAthField()
    unbonding = MicroAthField()
    total = MicroAthField()
    total_display = serializers.SerializerMethodField()

    def get_total_display(self, obj) -> str:
        return format_uath(obj.total)


class AccountSerializer(BalancesMixin, serializers.ModelSerializer):
    name = serializers.CharField(source="display_name")

    class Meta:
        model = Account
        fields = [
            "address",
            "name",
            "kind",
            "module",
            "available",
            "escrowed",
            "collateral",
            "bonded",
            "unbonding",
            "total",
            "total_display",
            "created_at",
        ]


class EntrySerializer(serializers.ModelSerializer):
    address = serializers.CharField(source="account.address")
    amount = serializers.SerializerMethodField()

    class Meta:
        model = Entry
        fields = ["seq", "address", "bucket", "amount"]

    def get_amount(self, obj) -> str:
        # Signed micro-ATH as a string ("-1500000").
        return str(obj.amount)


class TransactionSerializer(serializers.ModelSerializer):
    class Meta:
        model = LedgerTransaction
        fields = ["height", "kind", "memo", "meta", "created_at", "prev_hash", "hash"]


class TransactionDetailSerializer(TransactionSerializer):
    entries = EntrySerializer(many=True, read_only=True)

    class Meta(TransactionSerializer.Meta):
        fields = [*TransactionSerializer.Meta.fields, "entries"]


class AccountEntrySerializer(serializers.ModelSerializer):
    height = serializers.IntegerField(source="tx.height")
    kind = serializers.CharField(source="tx.kind")
    memo = serializers.CharField(source="tx.memo")
    created_at = serializers.DateTimeField(source="tx.created_at")
    amount = serializers.SerializerMethodField()

    class Meta:
        model = Entry
        fields = ["height", "kind", "bucket", "amount", "memo", "created_at"]

    def get_amount(self, obj) -> str:
        return str(obj.amount)


class ProblemSerializer(serializers.Serializer):
    height = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()


class VerifySerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    transactions = serializers.IntegerField()
    entries = serializers.IntegerField()
    accounts = serializers.IntegerField()
    supply = MicroAthField()
    height = serializers.IntegerField()
    first_bad_height = serializers.IntegerField(allow_null=True)
    problems = ProblemSerializer(many=True)


class SummarySerializer(serializers.Serializer):
    height = serializers.IntegerField()
    head_hash = serializers.CharField()
    supply = MicroAthField()
    wallets = serializers.IntegerField()
    modules = AccountSerializer(many=True)


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

"""What the wallet API reads and answers with."""

from rest_framework import serializers

from apps.explorer.serializers import AccountSerializer
from apps.platform.api_fields import AthAmountField, MicroAthField


class FaucetStatusSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    amount = MicroAthField()
    limit = serializers.IntegerField()
    used = serializers.IntegerField()
    left = serializers.IntegerField()


class WalletSerializer(serializers.Serializer):
    account = AccountSerializer()
    faucet = FaucetStatusSerializer()


class SendSerializer(serializers.Serializer):
    to_address = serializers.CharField(max_length=64)
    amount = MicroAthField(required=False, help_text="Micro-ATH (integer or digit string). Give this or amount_ath.")
    amount_ath = AthAmountField(required=False, help_text='ATH as a decimal string, e.g. "12.5".')
    memo = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if ("amount" in attrs) == ("amount_ath" in attrs):
            raise serializers.ValidationError("Give exactly one of amount (micro-ATH) or amount_ath (ATH).")
        attrs["amount"] = attrs.pop("amount", None) or attrs.pop("amount_ath")
        return attrs

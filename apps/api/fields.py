from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.amounts import AmountError, parse_ath


@extend_schema_field({"type": "string", "pattern": "^[0-9]+$", "example": "1500000"})
class MicroAthField(serializers.Field):
    """Integer micro-ATH on the wire as a decimal string ("1500000" = 1.5 ATH),
    so no JSON client rounds it through a float. Accepts a string or an int
    of micro-ATH."""

    def to_representation(self, value):
        return str(int(value))

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int)):
            raise serializers.ValidationError("Send micro-ATH as an integer or a string of digits.")
        text = str(data).strip()
        # isascii(): "²" passes isdigit() but not int(); the length check keeps
        # int() away from Python's 4,300-digit limit.
        if not (text.isascii() and text.isdigit()):
            raise serializers.ValidationError("Micro-ATH must be a positive whole number, e.g. \"1500000\".")
        if len(text.lstrip("0")) > 19:
            raise serializers.ValidationError("The amount is larger than the whole supply.")
        value = int(text)
        if value <= 0:
            raise serializers.ValidationError("The amount must be more than zero.")
        if value > 2**63 - 1:
            raise serializers.ValidationError("The amount is larger than the whole supply.")
        return value


@extend_schema_field(OpenApiTypes.STR)
class AthAmountField(serializers.Field):
    """An amount in ATH as a decimal string ("1.5"), cleaned to micro-ATH."""

    def to_representation(self, value):
        return str(value)

    def to_internal_value(self, data):
        try:
            return parse_ath(data)
        except AmountError as exc:
            raise serializers.ValidationError(str(exc)) from None


@extend_schema_field({"type": "string", "pattern": "^-?[0-9]+$", "example": "-1500000"})
class SignedMicroAthField(serializers.Field):
    """Read-only signed micro-ATH as a string ("-1500000" for a penalty)."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value):
        return str(int(value))

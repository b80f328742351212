from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.amounts import AmountError, parse_ath, parse_uath
from apps.core.numbers import NumberError, parse_int


@extend_schema_field({"type": "string", "pattern": "^[0-9]+$", "example": "1500000"})
class MicroAthField(serializers.Field):
    """Integer micro-ATH on the wire as a decimal string ("1500000" = 1.5 ATH),
    so no JSON client rounds it through a float. Accepts a string or an int
    of micro-ATH. Zero is refused unless ``allow_zero``."""

    def __init__(self, *, allow_zero=False, **kwargs):
        self.allow_zero = allow_zero
        super().__init__(**kwargs)

    def to_representation(self, value):
        return str(int(value))

    def to_internal_value(self, data):
        try:
            return parse_uath(data, allow_zero=self.allow_zero)
        except AmountError as exc:
            raise serializers.ValidationError(str(exc)) from None


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


def validated(serializer_class, request) -> dict:
    """The request body checked by ``serializer_class``: its ``validated_data``,
    or a 400 with the field errors (DRF's ``ValidationError``)."""
    payload = serializer_class(data=request.data)
    payload.is_valid(raise_exception=True)
    return payload.validated_data


def page_size(raw, *, default: int, maximum: int) -> int:
    """A list endpoint's ``page_size`` query parameter: ``default`` when it
    is absent or empty, else a whole number in plain digits from 1 to
    ``maximum``; anything else is a 400 saying so."""
    if raw in (None, ""):
        return default
    try:
        return parse_int(raw, minimum=1, maximum=maximum, what="page size")
    except NumberError:
        raise serializers.ValidationError(
            {"page_size": [_("The page size is a whole number from 1 to %d.") % maximum]}
        ) from None

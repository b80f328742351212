"""The OpenAPI schema's one project-wide addition: every mutating operation
documents the ``Idempotency-Key`` header (``apps.core.idempotency``)."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter

from apps.core import idempotency


class IdempotentAutoSchema(AutoSchema):
    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method in idempotency.MUTATING:
            parameters.append(
                OpenApiParameter(
                    idempotency.HEADER,
                    str,
                    OpenApiParameter.HEADER,
                    required=False,
                    pattern=idempotency.KEY_PATTERN,
                    description=(
                        "A key you choose (a UUID, say) to make retries safe: the same key with the same "
                        "request returns the first answer again and moves nothing; with a different request "
                        "it is refused with 409. Answers are kept for 24 hours."
                    ),
                )
            )
        return parameters

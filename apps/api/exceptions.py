"""The API's exception handler: a refused domain action answers with the
status its meaning maps to (:data:`apps.core.errors.STATUS`) and the same
body DRF gives its own errors, so views just call the service and let a
refusal propagate."""

from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from apps.core.errors import DomainError


def refusal_body(exc: DomainError) -> dict:
    message = str(exc)
    return {exc.field: [message]} if exc.field else {"detail": message}


def handle_exception(exc, context):
    if isinstance(exc, DomainError):
        # Like any DRF error: whatever the request wrote is undone.
        set_rollback()
        return Response(refusal_body(exc), status=exc.status)
    return exception_handler(exc, context)

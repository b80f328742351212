"""Refuses an unknown, revoked or expired personal token before anything
else can answer the request.

The scope check stays in the authentication class (``auth``), which runs in
the view. But a repeated ``Idempotency-Key`` is answered by the idempotency
middleware before the view runs, with the stored answer: without this, a
revoked token re-sending an earlier request got that 2xx answer back
instead of its refusal."""

from django.http import JsonResponse
from django.utils.deprecation import MiddlewareMixin
from rest_framework import exceptions

from . import auth


class RefuseUnusableToken(MiddlewareMixin):
    def process_request(self, request):
        if not request.path.startswith("/api/"):
            return None
        try:
            raw = auth.bearer_token(request)
            if raw is None:
                return None
            request.personal_token = auth.usable_token(raw)
        except exceptions.AuthenticationFailed as exc:
            response = JsonResponse({"detail": str(exc.detail)}, status=401)
            response["WWW-Authenticate"] = auth.KEYWORD
            return response
        return None

"""Project middleware."""

from django.http import HttpResponseBadRequest, JsonResponse
from django.utils.deprecation import MiddlewareMixin

from apps.core import idempotency

from .ratelimit import client_ip


class _SyncOnly:
    """A middleware that Django runs synchronously only."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)


class IdempotencyMiddleware(_SyncOnly):
    """Runs a mutating request that carries an idempotency key at most once
    (``apps.core.idempotency``). It wraps the view rather than the whole
    chain, so CSRF and authentication have already refused what they refuse,
    and the key's row commits in one transaction with the view's work."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method not in idempotency.MUTATING or idempotency.key_of(request) is None:
            return None
        return idempotency.handle(
            request, lambda: view_func(request, *view_args, **view_kwargs), address=client_ip(request)
        )


NUL_REFUSED = "Text in the request contains a NUL character (\\u0000)."
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _has_nul(query_dict) -> bool:
    return any("\x00" in key or any("\x00" in v for v in values) for key, values in query_dict.lists())


class RefuseNul(MiddlewareMixin):
    """A query string or form body holding a NUL is a 400 before any view
    sees it. No field takes one, and PostgreSQL cannot even look such text
    up: a slug or code holding a NUL was a database error (a 500), not a
    miss. JSON bodies are checked by their parser (``apps.core.jsonlimits``);
    form bodies here, because DRF takes a form body Django already parsed
    (CSRF reads it) without running its own parsers."""

    def process_request(self, request):
        has_form = request.method not in ("GET", "HEAD", "OPTIONS") and request.content_type in FORM_TYPES
        if _has_nul(request.GET) or (has_form and _has_nul(request.POST)):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": NUL_REFUSED}, status=400)
            return HttpResponseBadRequest(NUL_REFUSED, content_type="text/plain; charset=utf-8")
        return None

"""Project middleware."""

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


class SynchronousStack(_SyncOnly):
    """Keeps the whole middleware chain synchronous under ASGI.

    Every view of this project is synchronous. Django runs a middleware that
    can do both in the mode of the layer below it, so with nothing sync-only
    at the bottom the chain runs async, and each ``process_request`` or
    ``process_response`` hook of a classic middleware then hops to the
    request's thread and back: about a dozen thread switches per request,
    more than the whole cost of a simple view. Being sync-only and
    innermost, this one makes Django switch once at the top of the chain
    instead (and once more around the view, as for any view).
    """


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

"""Project middleware."""


class SynchronousStack:
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

    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

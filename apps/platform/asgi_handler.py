"""Django's ASGI handler, run the way a synchronous project needs it.

Every view here is synchronous, yet Django's own ASGI handler:

* builds the middleware chain in async mode, so a request hops from the
  event loop to a thread for the synchronous middleware, back to the loop
  for the handler's async core, and to the thread again for the view (and a
  classic middleware's hooks hop too unless a sync-only one sits innermost);
* starts a new thread for every request (``ThreadSensitiveContext``) and
  joins it when the request ends.

Together that cost more CPU than a small view's own work: the minimal view
of bench/ingest.py took 1.7 to 1.9 ms of CPU a request here against 3.4 to
4.5 with Django's handler. Here the chain is synchronous, so a request's
middleware and view run in one call on one thread, and that thread comes
from a set kept for the process: a request takes one for its whole life
(its database connection and transaction stay on that thread, as Django
requires) and the thread rejoins the set once all the request gave it has
run.

A streamed answer produced by a synchronous iterator (the exports, read
from the database in chunks; static files) is pulled a part at a time on
the request's thread as it is sent. Django's handler reads such an iterator
into a list first, so a large export sat whole in memory before its first
byte went out.

Everything else is Django's handler unchanged: reading the body, the
request signals, the disconnect listener, sending the response.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers import asgi
from django.core.handlers.base import BaseHandler

# Idle request threads kept per process; a burst of more concurrent
# requests starts more, and those beyond this number end when handed back.
IDLE_THREADS = 32


class _RequestThread(ThreadPoolExecutor):
    """One thread that runs one call at a time, as ``ThreadSensitiveContext``
    requires, counting the calls it has been given and not yet finished."""

    def __init__(self):
        super().__init__(max_workers=1, thread_name_prefix="request")
        self.pending = 0
        self._counting = threading.Lock()

    def submit(self, fn, /, *args, **kwargs):
        with self._counting:
            self.pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future) -> None:
        with self._counting:
            self.pending -= 1


class _Threads:
    """The request threads a process keeps between requests."""

    def __init__(self, keep: int):
        self.keep = keep
        self.lock = threading.Lock()
        self.idle: list[_RequestThread] = []

    def take(self) -> _RequestThread:
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return _RequestThread()

    def give(self, thread: _RequestThread) -> None:
        """Back to the set once everything it was given has run: a request
        cancelled by the server (its client long gone) may end while its
        view still runs, and the next request must not queue behind it."""
        if thread.pending:
            thread.submit(self._idle, thread)
        else:
            self._idle(thread)

    def _idle(self, thread: _RequestThread) -> None:
        with self.lock:
            if len(self.idle) < self.keep:
                self.idle.append(thread)
                return
        thread.shutdown(wait=False)


class ASGIHandler(asgi.ASGIHandler):
    def __init__(self):
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        # The whole synchronous chain, view included, in one call on the
        # request's thread.
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)
        self._threads = _Threads(IDLE_THREADS)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        thread = self._threads.take()
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            self._threads.give(thread)

    async def send_response(self, response, send):
        if response.streaming and not response.is_async:
            response.streaming_content = _pulled_on_request_thread(response.streaming_content)
        await super().send_response(response, send)


_END = object()


async def _pulled_on_request_thread(parts):
    """The parts of a synchronous iterator, each produced on the request's
    thread (it may hold the request's database cursor) when it is wanted."""
    take = sync_to_async(next, thread_sensitive=True)
    while (part := await take(parts, _END)) is not _END:
        yield part

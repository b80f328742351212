"""HTTP under ASGI (apps/platform/asgi_handler.py): a request's middleware and
view run in one call on one thread, threads are reused from request to
request, and concurrent requests still run side by side."""

import asyncio
import threading

import pytest
from channels.testing import HttpCommunicator
from django.http import HttpResponse, StreamingHttpResponse
from django.test import override_settings
from django.urls import path

from apps.platform.asgi_handler import ASGIHandler

threads: list[tuple[str, int]] = []
met = threading.Event()


class RecordThread:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        threads.append(("middleware", threading.get_ident()))
        return self.get_response(request)


def where(request):
    threads.append(("view", threading.get_ident()))
    return HttpResponse("ok")


def waits(request):
    """Answers once ``meets`` has run: only if the two run side by side."""
    return HttpResponse("met" if met.wait(timeout=5) else "alone")


def meets(request):
    met.set()
    return HttpResponse("ok")


def streams(request):
    def rows():
        for i in range(3):
            threads.append(("stream", threading.get_ident()))
            yield f"row {i}\n"

    threads.append(("view", threading.get_ident()))
    return StreamingHttpResponse(rows(), content_type="text/plain")


first_part_sent = threading.Event()


def streams_lazily(request):
    def parts():
        yield "first\n"
        yield "second\n" if first_part_sent.wait(2) else "second, produced before the first was sent\n"

    return StreamingHttpResponse(parts(), content_type="text/plain")


view_may_end = threading.Event()


def abandoned(request):
    view_may_end.wait(10)
    return HttpResponse("too late")


def fails(request):
    raise RuntimeError("boom")


urlpatterns = [
    path("where", where),
    path("waits", waits),
    path("meets", meets),
    path("streams", streams),
    path("streams-lazily", streams_lazily),
    path("abandoned", abandoned),
    path("fails", fails),
]

MIDDLEWARE = ["django.middleware.common.CommonMiddleware", __name__ + ".RecordThread"]


@pytest.fixture
def handler():
    threads.clear()
    met.clear()
    first_part_sent.clear()
    view_may_end.clear()
    with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE, ALLOWED_HOSTS=["testserver"], DEBUG=False):
        yield ASGIHandler()


async def get(app, url):
    """The status and the whole body (a streamed one too: Django ends it with
    a message without a body, which HttpCommunicator does not read)."""
    communicator = HttpCommunicator(app, "GET", url, headers=[(b"host", b"testserver")])
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(10)
    body = b""
    while True:
        message = await communicator.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(10)
    return {"status": start["status"], "body": body}


@pytest.mark.asyncio
async def test_middleware_and_view_run_on_one_thread_and_the_thread_is_reused(handler):
    for _ in range(20):
        response = await get(handler, "/where")
        assert response["status"] == 200 and response["body"] == b"ok"
    idents = {ident for _, ident in threads}
    assert len(threads) == 40 and threading.get_ident() not in idents
    # Each request's middleware and view on one thread...
    assert all(threads[i][1] == threads[i + 1][1] for i in range(0, 40, 2))
    # ...and one after another, the same thread again, not one per request.
    assert len(idents) == 1


@pytest.mark.asyncio
async def test_concurrent_requests_run_side_by_side(handler):
    slow = asyncio.ensure_future(get(handler, "/waits"))
    await asyncio.sleep(0.1)
    assert (await get(handler, "/meets"))["status"] == 200
    response = await slow
    assert response["status"] == 200 and response["body"] == b"met"


@pytest.mark.asyncio
async def test_a_streamed_answer_is_produced_on_the_requests_thread(handler):
    response = await get(handler, "/streams")
    assert response["status"] == 200 and response["body"] == b"row 0\nrow 1\nrow 2\n"
    assert {ident for kind, ident in threads if kind in ("view", "stream")} == {threads[0][1]}


@pytest.mark.asyncio
async def test_a_streamed_answer_is_produced_as_it_is_sent_not_read_whole_first(handler):
    """An export is read from the database in chunks: its first part goes
    out before the next is produced, so it never sits whole in memory."""
    communicator = HttpCommunicator(handler, "GET", "/streams-lazily", headers=[(b"host", b"testserver")])
    await communicator.send_input({"type": "http.request", "body": b""})
    assert (await communicator.receive_output(10))["status"] == 200
    assert (await communicator.receive_output(10))["body"] == b"first\n"
    first_part_sent.set()
    assert (await communicator.receive_output(10))["body"] == b"second\n"
    assert not (await communicator.receive_output(10)).get("more_body")
    await communicator.wait(10)


@pytest.mark.asyncio
async def test_a_request_cancelled_while_its_view_runs_holds_up_no_later_request(handler):
    """The server gives up on a request whose client went away (Daphne
    cancels it after a while) and its view runs on: the next requests are
    served at once, on another thread, and the first thread serves again
    once its view has returned."""
    gone = HttpCommunicator(handler, "GET", "/abandoned", headers=[(b"host", b"testserver")])
    await gone.send_input({"type": "http.request", "body": b""})
    await asyncio.sleep(0.2)
    await gone.send_input({"type": "http.disconnect"})
    gone.future.cancel()  # what the server does to an application that outstays it
    with pytest.raises(asyncio.CancelledError):
        await gone.future
    started = asyncio.get_running_loop().time()
    for _ in range(3):
        assert (await get(handler, "/where"))["status"] == 200
    assert asyncio.get_running_loop().time() - started < 5
    assert len(handler._threads.idle) == 1
    view_may_end.set()
    for _ in range(50):
        if len(handler._threads.idle) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(handler._threads.idle) == 2


@pytest.mark.asyncio
async def test_an_error_in_a_view_is_a_500_and_the_next_request_is_served(handler):
    response = await get(handler, "/fails")
    assert response["status"] == 500
    assert (await get(handler, "/where"))["status"] == 200

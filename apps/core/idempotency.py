"""Idempotency keys: a retried request moves money once.

A client that sends a mutating request and loses the answer (a dropped
connection, a timeout, a double click) cannot know whether it happened.
So every mutating request may carry a key the client chose: the
``Idempotency-Key`` header on the API, a hidden ``idempotency_key`` field
that ``{% idempotency_field %}`` puts in the HTML forms. The first request
with a key runs and its answer is kept; the same key with the same request
returns that answer again (marked ``Idempotent-Replayed: true``) and moves
nothing; the same key with a different request is refused with 409.

The key's row is written in the same database transaction as everything the
view does, so the answer is kept if and only if the work was committed: a
process that dies half-way leaves neither, and the retry runs afresh. Two
copies sent at once are serialised by the row's unique constraint: the
second waits for the first to commit, then replays its answer. Only answers
below 400 are kept; a refused request changed nothing, so the client may fix
it and send it again under the same key.
"""

import hashlib
import json
import re
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from . import retry
from .models import IdempotencyKey

HEADER = "Idempotency-Key"
FORM_FIELD = "idempotency_key"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Visible ASCII, as any UUID or client-made token is.
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_KEY = re.compile(KEY_PATTERN)
# Headers that are part of an answer's meaning; cookies never are (a replay
# must not hand out a session).
KEPT_HEADERS = ("Location", "Retry-After")
KEPT_PREFIX = "HX-"
FORM_IGNORED = frozenset({"csrfmiddlewaretoken", FORM_FIELD})


class Conflict(Exception):
    """The key was used for a different request."""


class Twin(Exception):
    """The same key arrived twice at once and the other copy committed first."""


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def key_of(request) -> str | None:
    """The key the request carries, or None. The header wins over the form field."""
    key = request.headers.get(HEADER)
    if key is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        key = request.POST.get(FORM_FIELD)
    return key


def principal_of(request, address: str) -> str:
    """Whose key it is: keys never cross from one client to another.
    ``address`` is the client's address as the web layer trusts it (behind
    proxies, ``TRUSTED_PROXIES`` decides), for a client with no log-in."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    authorization = request.headers.get("Authorization")
    if authorization:
        return "auth:" + hashlib.sha256(authorization.encode()).hexdigest()[:40]
    return f"addr:{address}"[:80]


def fingerprint_of(request) -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}?{request.META.get('QUERY_STRING', '')}\n".encode())
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        # The form's own CSRF token and key are not part of what was asked.
        fields = sorted((k, v) for k, values in request.POST.lists() if k not in FORM_IGNORED for v in values)
        files = sorted((k, f.name, f.size) for k, f in request.FILES.items())
        digest.update(json.dumps([fields, files]).encode())
    else:
        digest.update(request.body)
    return digest.hexdigest()


def _refusal(request, status: int, message: str) -> HttpResponse:
    if _is_api(request) or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"detail": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def _replay(record: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(bytes(record.body), status=record.status, content_type=record.content_type or None)
    for name, value in record.headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


def _keep(record: IdempotencyKey, response) -> None:
    record.status = response.status_code
    record.content_type = response.get("Content-Type", "")
    record.headers = {
        name: value for name, value in response.items() if name in KEPT_HEADERS or name.startswith(KEPT_PREFIX)
    }
    record.body = response.content
    record.save(update_fields=["status", "content_type", "headers", "body"])


def _expired_before():
    return timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)


def _run_once(principal: str, key: str, fingerprint: str, call):
    record = IdempotencyKey.objects.select_for_update().filter(principal=principal, key=key).first()
    if record is not None and record.created_at < _expired_before():
        record.delete()
        record = None
    if record is not None:
        if record.fingerprint != fingerprint:
            raise Conflict
        return _replay(record)
    # A twin sent at the same moment blocks on this insert until we commit,
    # then fails it and replays our answer.
    try:
        with transaction.atomic():
            record = IdempotencyKey.objects.create(principal=principal, key=key, fingerprint=fingerprint)
    except IntegrityError:
        raise Twin from None
    response = call()
    if hasattr(response, "render") and callable(response.render):
        response = response.render()
    if response.streaming or response.status_code >= 400:
        record.delete()
    else:
        _keep(record, response)
    return response


def handle(request, call, *, address: str):
    """Run ``call()`` (the view) at most once per key; see the module
    docstring. ``address``: the client's address (see ``principal_of``)."""
    key = key_of(request)
    if key is None:
        return call()
    if not _KEY.match(key):
        return _refusal(request, 400, f"{HEADER} must be 1 to 255 visible ASCII characters.")
    principal, fingerprint = principal_of(request, address), fingerprint_of(request)
    for _ in range(2):
        try:
            # One transaction for the key and the view's work, rerun whole on
            # a deadlock (the view's own services are inside it, so they leave
            # the rerun to this outermost transaction).
            return retry.run_atomic(_run_once, principal, key, fingerprint, call)
        except Conflict:
            return _refusal(
                request,
                409,
                f"This {HEADER} was already used for a different request. "
                + ("Use a new key." if _is_api(request) else "Reload the page and submit the form again."),
            )
        except Twin:
            continue  # the twin committed first: the next round replays its answer
    return _refusal(request, 409, "This request is being processed; try again in a moment.")


def prune(now=None) -> int:
    """Forget answers older than ``IDEMPOTENCY_KEY_HOURS``."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted

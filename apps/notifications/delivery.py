"""Sending the queue: e-mails through Django's mail backend, webhooks as
signed POSTs. Each attempt is logged; a failure is retried with
exponential backoff; an endpoint that keeps failing is disabled and its
owner told.

A claimed delivery's next attempt is pushed past the time a send can take
before it is sent, so a worker that dies mid-send leaves it due again, and
two workers never send it at once. Sends run on a pool of threads with
hard time and size limits: a slow receiver holds one thread for at most
``TIMEOUT`` seconds and never delays another delivery."""

import http.client
import json
import logging
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.core.mail import send_mail
from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.errors import DomainError

from . import services, signing, targets
from .models import Attempt, Channel, Delivery, DeliveryState, Event, WebhookEndpoint

TIMEOUT = 5.0  # seconds for one whole attempt: connect, send, answer
MAX_RESPONSE = 64 * 1024  # bytes of a receiver's answer read, at most
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=15)
BACKOFF_MAX = timedelta(hours=2)
DISABLE_AFTER = 10  # failed attempts in a row
CLAIM_FOR = timedelta(seconds=TIMEOUT * 6)

log = logging.getLogger(__name__)


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after ``attempts`` failed ones: 15 s, 30 s, 1 min, ... at most 2 h."""
    return min(BACKOFF_BASE * (2 ** (attempts - 1)), BACKOFF_MAX)


def claim(limit: int = 50, now=None) -> list[int]:
    """Take up to ``limit`` due deliveries for this worker."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        Delivery.objects.filter(pk__in=ids).update(next_attempt_at=now + CLAIM_FOR)
    return ids


def payload(delivery: Delivery) -> bytes:
    n = delivery.notification
    return json.dumps(
        {
            "id": delivery.pk,
            "event": n.event,
            "created_at": n.created_at.isoformat(),
            "title": n.title,
            "body": n.body,
            "url": n.url,
            "data": n.data,
        },
        sort_keys=True,
    ).encode()


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the address that was checked, verifying the certificate of the host name."""

    def __init__(self, host, ip, port, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._ip = ip

    def connect(self):
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _cut_off(conn: http.client.HTTPConnection, expired: threading.Event) -> None:
    """The attempt's time is up: stop whatever it is waiting for. Each read
    has its own socket timeout, but a receiver sending a byte at a time,
    each within it, would otherwise hold the attempt for as long as it liked."""
    expired.set()
    sock = conn.sock
    if sock is not None:
        try:
            # The socket's own shutdown, not SSLSocket's: no TLS state is touched
            # from this thread; the reader wakes with an error or the end of data.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


def post(url: str, body: bytes, headers: dict) -> int:
    """POST ``body``; the answer's status. Raises OSError/DomainError on a
    refused target, a network error or a receiver past the limits: at most
    ``TIMEOUT`` seconds from looking up its name to the answer's end, however
    the receiver (or its name server) paces it, and ``MAX_RESPONSE`` bytes of
    the answer read."""
    started = time.monotonic()
    target = targets.parse(url)
    ip = str(targets.resolve(target, timeout=TIMEOUT))
    if target.scheme == "https":
        conn = _PinnedHTTPSConnection(target.host, ip, target.port, TIMEOUT)
    else:
        conn = http.client.HTTPConnection(ip, target.port, timeout=TIMEOUT)
    expired = threading.Event()
    timer = threading.Timer(max(0.0, TIMEOUT - (time.monotonic() - started)), _cut_off, args=(conn, expired))
    timer.daemon = True
    timer.start()
    too_slow = _("the receiver took longer than %(s)d seconds") % {"s": TIMEOUT}
    try:
        conn.connect()
        if expired.is_set():
            raise TimeoutError(too_slow)
        conn.request("POST", target.path, body=body, headers={"Host": target.host_header, **headers})
        response = conn.getresponse()
        read = 0
        while chunk := response.read(8192):
            read += len(chunk)
            if read > MAX_RESPONSE:
                break  # the status is all we need; the rest is not read
        if expired.is_set():
            raise TimeoutError(too_slow)
        return response.status
    except (OSError, http.client.HTTPException) as exc:
        # Whatever broke once the time was up broke because of it; a socket
        # timeout (one wait past ``TIMEOUT``) may beat the timer by a moment.
        if expired.is_set() or isinstance(exc, TimeoutError):
            raise TimeoutError(too_slow) from None
        raise
    finally:
        timer.cancel()
        conn.close()


def _send(delivery: Delivery) -> tuple[int | None, str]:
    n = delivery.notification
    if delivery.channel == Channel.EMAIL:
        address = n.user.email
        if not address:
            return None, _("no e-mail address")
        send_mail(f"[Aethir] {n.title}", f"{n.body}\n\n{n.url}".strip(), None, [address])
        return None, ""
    endpoint = delivery.endpoint
    if not endpoint.active:
        return None, _("endpoint disabled")
    body = payload(delivery)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Aethir-Webhooks/1",
        signing.TIMESTAMP_HEADER: str(timestamp),
        signing.SIGNATURE_HEADER: signing.sign(endpoint.secret, timestamp, body),
        signing.EVENT_HEADER: n.event,
        signing.DELIVERY_HEADER: str(delivery.pk),
    }
    status = post(endpoint.url, body, headers)
    return status, "" if 200 <= status < 300 else _("answered %(status)d") % {"status": status}


def attempt(delivery_id: int, release_connection: bool = False) -> Delivery:
    """One try of one delivery, logged; the queue row updated after it.

    ``release_connection``: give this thread's database connection back
    before the network send (sender threads). A receiver may take up to
    ``TIMEOUT`` to answer; holding a pooled connection that long would let
    a few slow receivers starve every other thread of the process."""
    delivery = Delivery.objects.select_related("notification__user", "endpoint").get(pk=delivery_id)
    if release_connection and not connection.in_atomic_block:
        connection.close()
    started = time.monotonic()
    try:
        status, error = _send(delivery)
    except (OSError, DomainError, http.client.HTTPException, ssl.SSLError) as exc:
        status, error = None, (str(exc) or exc.__class__.__name__)[:300]
    took = int((time.monotonic() - started) * 1000)
    return _record(delivery, status, error, took)


def _record(delivery: Delivery, status: int | None, error: str, took_ms: int) -> Delivery:
    now = timezone.now()
    disabled = None
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().get(pk=delivery.pk)
        Attempt.objects.create(delivery=delivery, at=now, status_code=status, error=error, duration_ms=took_ms)
        delivery.attempts += 1
        delivery.last_status, delivery.last_error = status, error
        if not error:
            delivery.state, delivery.delivered_at = DeliveryState.DELIVERED, now
        elif delivery.attempts >= MAX_ATTEMPTS or error == _("endpoint disabled"):
            delivery.state = DeliveryState.FAILED
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts)
        delivery.save()
        if delivery.endpoint_id and error != _("endpoint disabled"):
            endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
            endpoint.failures = 0 if not error else endpoint.failures + 1
            if endpoint.active and endpoint.failures >= DISABLE_AFTER:
                endpoint.active = False
                endpoint.disabled_reason = _("%(n)d failed deliveries in a row; last: %(error)s") % {
                    "n": endpoint.failures,
                    "error": error,
                }
                disabled = endpoint
            endpoint.save(update_fields=["failures", "active", "disabled_reason"])
        if disabled is not None:
            services.notify(
                [disabled.user_id],
                Event.WEBHOOK_DISABLED,
                f"webhook-disabled:{disabled.pk}:{now.isoformat()}",
                _("Webhook endpoint disabled: %(url)s") % {"url": disabled.url},
                disabled.disabled_reason + " " + _("Re-enable it on your notification settings once it answers."),
                url="/notifications/settings/",
                data={"endpoint": disabled.pk, "url": disabled.url},
            )
    return delivery


class Sender:
    """Runs attempts on a thread pool; ``submit`` never waits for one."""

    def __init__(self, threads: int = 8):
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="deliver")
        self.in_flight: set[int] = set()

    def submit(self, delivery_ids) -> None:
        for pk in delivery_ids:
            if pk not in self.in_flight:
                self.in_flight.add(pk)
                self.pool.submit(self._run, pk)

    def _run(self, pk: int) -> None:
        try:
            attempt(pk, release_connection=True)
        except Exception:
            # The claim lapses and the delivery is tried again; say why.
            log.exception("delivery %s: attempt failed before it was recorded", pk)
        finally:
            close_old_connections()
            self.in_flight.discard(pk)

    def busy(self) -> int:
        return len(self.in_flight)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def run_due(now=None) -> list[Delivery]:
    """Send every due delivery now, in this thread (tests, ``--once``)."""
    return [attempt(pk) for pk in claim(limit=1000, now=now)]

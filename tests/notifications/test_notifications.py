"""Notifications from the network's own records: a degraded node reaches
its provider in the app, by e-mail and as a signed webhook; deliveries are
retried with backoff from the database queue, logged, and an endpoint that
keeps failing is disabled with a notification; targets are validated."""

import json
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.core.errors import Refused
from apps.core.models import GpuNode, NodeStatus
from apps.marketplace import rentals, workloads
from apps.marketplace.workload_spec import from_request
from apps.monitoring import assignment, consensus
from apps.monitoring.models import CheckerReport
from apps.notifications import delivery, detect, services, signing
from apps.notifications.models import Attempt, Delivery, DeliveryState, Event, Notification, WebhookEndpoint

from ..factories import UserFactory, fund, make_checker, make_node
from .receiver import Receiver


def look():
    """Two passes of the worker: a new record is read the pass after it appears."""
    detect.run_all()
    detect.run_all()


@pytest.fixture
def loopback_allowed(settings):
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOW_NETS = "127.0.0.0/8"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def degrade(node) -> None:
    """Epoch 0 as the checkers saw it: the node answered 95% of probes."""
    GpuNode.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)
    assignment.fix_round(0)
    for checker_id in node.assignments.filter(epoch=0).values_list("checker_id", flat=True):
        CheckerReport.objects.create(
            epoch=0,
            node=node,
            checker_id=checker_id,
            probes=10,
            uptime_ppm=950_000,
            task_ppm=950_000,
            latency_ms=30,
            spec_ok=True,
            gpu_name_seen=node.gpu_model.name,
            gpu_count_seen=node.gpu_count,
            payload_hash="x",
            signature="y",
        )
    assert consensus.finalize(0) is not None


def test_a_degraded_node_reaches_its_provider_as_a_signed_webhook(genesis, loopback_allowed, receiver):
    provider = UserFactory()
    node, _ = make_node(provider)
    [make_checker() for _ in range(3)]
    look()  # the worker was already running
    endpoint = services.add_endpoint(provider, receiver.url, "alerts")

    degrade(node)
    node.refresh_from_db()
    assert node.status == NodeStatus.DEGRADED
    # The settlement itself queued nothing: the worker finds it afterwards.
    assert not Notification.objects.exists() and not Delivery.objects.exists()
    look()
    look()  # looking again tells nobody twice
    note = Notification.objects.get(user=provider)
    assert note.event == Event.NODE_DEGRADED and node.name in note.title and note.in_app
    assert services.unread_count(provider) == 1

    [sent] = delivery.run_due()
    assert sent.state == DeliveryState.DELIVERED and sent.last_status == 200
    [request] = receiver.received
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert signing.verify(
        endpoint.secret, headers["x-aethir-timestamp"], request["body"], headers["x-aethir-signature"], time.time()
    )
    assert not signing.verify(
        "another secret", headers["x-aethir-timestamp"], request["body"], headers["x-aethir-signature"], time.time()
    )
    # A replay an hour later is refused by the same check.
    assert not signing.verify(
        endpoint.secret,
        headers["x-aethir-timestamp"],
        request["body"],
        headers["x-aethir-signature"],
        time.time() + 3600,
    )
    body = json.loads(request["body"])
    assert body["event"] == "node.degraded" and body["data"]["node"] == node.pk
    assert body["data"]["status_before"] == "online" and body["data"]["status"] == "degraded"
    assert Attempt.objects.get(delivery=sent).status_code == 200
    assert delivery.run_due() == []  # nothing left in the queue


def test_email_goes_to_those_who_chose_it(genesis):
    provider = UserFactory()
    services.set_email(provider, "ops@example.org")
    services.set_preferences(provider, {(Event.NODE_DEGRADED, "email")})  # e-mail only
    node, _ = make_node(provider)
    [make_checker() for _ in range(3)]
    look()
    degrade(node)
    look()
    assert services.unread_count(provider) == 0  # not in the app: they turned that off
    delivery.run_due()
    [message] = mail.outbox
    assert message.to == ["ops@example.org"] and node.name in message.subject


def test_failures_are_retried_with_backoff_then_the_endpoint_is_disabled(genesis, loopback_allowed):
    failing = Receiver(status=500)
    try:
        user = UserFactory()
        endpoint = services.add_endpoint(user, failing.url)
        for n in range(2):
            services.notify([user.pk], Event.ESCROW_LOW, f"test:{n}", f"event {n}")
        now = timezone.now()
        delivery.run_due(now=now)
        first = Delivery.objects.order_by("id").first()
        assert first.attempts == 1 and first.last_status == 500 and first.state == DeliveryState.PENDING
        assert first.next_attempt_at - now >= delivery.BACKOFF_BASE - timedelta(seconds=1)
        assert delivery.run_due(now=now) == []  # not due yet
        later = now
        for _ in range(12):
            later += delivery.BACKOFF_MAX
            delivery.run_due(now=later)
        endpoint.refresh_from_db()
        assert not endpoint.active and "failed deliveries in a row" in endpoint.disabled_reason
        assert Attempt.objects.filter(delivery__endpoint=endpoint, status_code=500).count() == delivery.DISABLE_AFTER
        # What was still queued for it is given up, not sent.
        assert set(Delivery.objects.filter(endpoint=endpoint).values_list("state", flat=True)) == {"failed"}
        told = Notification.objects.get(user=user, event=Event.WEBHOOK_DISABLED)
        assert failing.url in told.title and told.in_app
        assert not told.deliveries.filter(channel="webhook").exists()
        assert len(failing.received) == delivery.DISABLE_AFTER
    finally:
        failing.close()


def test_backoff_grows_exponentially_to_a_cap():
    waits = [delivery.backoff(n) for n in range(1, 12)]
    assert waits[:3] == [timedelta(seconds=15), timedelta(seconds=30), timedelta(seconds=60)]
    assert waits[-1] == delivery.BACKOFF_MAX and waits == sorted(waits)


@pytest.mark.parametrize(
    "url, why",
    [
        ("http://example.org/hook", "HTTPS"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://169.254.169.254/latest", "metadata"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://user:pw@example.org/hook", "credentials"),
        ("ftp://example.org/", "scheme"),
    ],
)
def test_webhook_targets_are_validated(user, settings, url, why):
    settings.WEBHOOKS_ALLOW_HTTP = False
    settings.WEBHOOKS_ALLOW_NETS = ""
    with pytest.raises(Refused, match=why):
        services.add_endpoint(user, url)
    assert not WebhookEndpoint.objects.exists()


def test_a_slow_receiver_is_cut_off(genesis, loopback_allowed, monkeypatch):
    monkeypatch.setattr(delivery, "TIMEOUT", 0.5)
    slow = Receiver(delay=3)
    try:
        user = UserFactory()
        services.add_endpoint(user, slow.url)
        services.notify([user.pk], Event.ESCROW_LOW, "slow", "slow")
        [d] = delivery.run_due()
        assert d.state == DeliveryState.PENDING and d.last_status is None and "longer than" in d.last_error
    finally:
        slow.close()


def test_the_settings_page_adds_an_endpoint_and_shows_its_log(client, genesis, loopback_allowed, receiver):
    user = UserFactory()
    client.force_login(user)
    bad = client.post("/notifications/settings/", {"action": "endpoint", "url": "https://10.0.0.1/x"})
    assert bad.status_code == 400 and "private" in bad.content.decode()
    response = client.post("/notifications/settings/", {"action": "endpoint", "url": receiver.url})
    endpoint = WebhookEndpoint.objects.get(user=user)
    assert response.status_code == 302
    services.notify([user.pk], Event.CONTAINER_EXITED, "k", "Rental 1: the container exited")
    delivery.run_due()
    page = client.get(f"/notifications/endpoints/{endpoint.pk}/").content.decode()
    assert endpoint.secret in page and "Rental 1: the container exited" in page and "200" in page
    # Someone else's endpoint is not theirs to see.
    client.force_login(UserFactory())
    assert client.get(f"/notifications/endpoints/{endpoint.pk}/").status_code == 404


def test_preferences_are_per_event_and_channel(client, genesis):
    user = UserFactory()
    client.force_login(user)
    client.post("/notifications/settings/", {"action": "preferences", "pref": ["rental.container_exited|in_app"]})
    services.notify([user.pk], Event.CONTAINER_EXITED, "a", "exited")
    services.notify([user.pk], Event.ESCROW_LOW, "b", "low")
    assert [n.in_app for n in Notification.objects.filter(user=user).order_by("id")] == [True, False]
    assert services.unread_count(user) == 1
    assert "exited" in client.get("/notifications/").content.decode()


def test_a_renter_hears_of_low_escrow_and_a_stopped_container(genesis):
    renter = UserFactory()
    fund(renter.wallet, 1_000_000_000)
    node, _ = make_node()
    GpuNode.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)
    look()
    rental = rentals.rent(
        renter, node.pk, mode="on_demand", workload=from_request(template="", image="busybox"), escrow=50_000
    )
    look()
    assert Notification.objects.filter(user=renter, event=Event.ESCROW_LOW).exists()
    workloads.record_status(node, {"lease": rental.pk, "state": "exited", "exit_code": 3, "log_tail": ""})
    look()
    note = Notification.objects.get(user=renter, event=Event.CONTAINER_EXITED)
    assert "exited" in note.title and "code 3" in note.body


@pytest.mark.django_db(transaction=True)
def test_a_slow_receiver_does_not_hold_up_another(loopback_allowed, monkeypatch):
    import threading

    from apps.core import ledger, parameters

    parameters.ensure_defaults()
    ledger.genesis()
    # The slow receiver answers only when the test lets it, within a time
    # limit no busy machine reaches: no timing decides the outcome.
    monkeypatch.setattr(delivery, "TIMEOUT", 60.0)
    release = threading.Event()
    slow, fast = Receiver(hold=release), Receiver()
    sender = delivery.Sender(threads=4)
    try:
        patient, eager = UserFactory(), UserFactory()
        services.add_endpoint(patient, slow.url)
        services.add_endpoint(eager, fast.url)
        services.notify([patient.pk], Event.ESCROW_LOW, "slow", "for the slow receiver")
        services.notify([eager.pk], Event.ESCROW_LOW, "fast", "for the fast receiver")
        sender.submit(delivery.claim())
        quick = Delivery.objects.get(endpoint__user=eager)
        for _ in range(600):  # up to 30 s: longer than a pooled connection is waited for
            quick.refresh_from_db()
            if quick.state == DeliveryState.DELIVERED:
                break
            time.sleep(0.05)
        assert quick.state == DeliveryState.DELIVERED
        # ... while the slow one is still waiting for its answer.
        assert Delivery.objects.get(endpoint__user=patient).attempts == 0 and not slow.received
        release.set()
    finally:
        release.set()
        sender.close()
        slow.close()
        fast.close()
    assert Delivery.objects.get(endpoint__user=patient).state == DeliveryState.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_a_sender_thread_holds_no_database_connection_while_a_receiver_answers(loopback_allowed, monkeypatch):
    # Otherwise a few slow receivers would hold the process's whole
    # connection pool and every other delivery would wait for them.
    from django.db import connection

    from apps.core import ledger, parameters

    parameters.ensure_defaults()
    ledger.genesis()
    held = []
    real_post = delivery.post

    def watching_post(url, body, headers):
        held.append(connection.connection is not None)
        return real_post(url, body, headers)

    monkeypatch.setattr(delivery, "post", watching_post)
    receiver = Receiver()
    sender = delivery.Sender(threads=1)
    try:
        user = UserFactory()
        services.add_endpoint(user, receiver.url)
        services.notify([user.pk], Event.ESCROW_LOW, "one", "one")
        sender.submit(delivery.claim())
    finally:
        sender.close()
        receiver.close()
    assert held == [False]
    assert Delivery.objects.get(endpoint__user=user).state == DeliveryState.DELIVERED


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_receiver_dripping_its_answer_is_cut_off_at_the_time_limit(genesis, loopback_allowed, monkeypatch, where):
    # Each byte comes well within a socket timeout: only a limit on the whole
    # attempt stops a receiver that trickles its answer.
    from .receiver import DrippingReceiver

    monkeypatch.setattr(delivery, "TIMEOUT", 0.5)
    dripping = DrippingReceiver(where, every=0.05, total=6.0)
    try:
        user = UserFactory()
        services.add_endpoint(user, dripping.url)
        services.notify([user.pk], Event.ESCROW_LOW, "drip", "drip")
        started = time.monotonic()
        [d] = delivery.run_due()
        took = time.monotonic() - started
    finally:
        dripping.close()
    assert took < 3.0, took
    assert d.state == DeliveryState.PENDING and d.last_status is None and "longer than" in d.last_error


def test_a_provider_hears_of_suspension_and_return_but_not_of_a_first_verification(genesis):
    # The verdicts as consensus records them, epoch by epoch.
    from apps.monitoring.models import NodeEpoch

    provider = UserFactory()
    node, _ = make_node(provider, name="ups-h100")
    look()  # the worker was already running
    for epoch, before, after in (
        (1, "pending", "online"),  # verified for the first time: not "back"
        (2, "online", "degraded"),
        (3, "degraded", "suspended"),
        (4, "suspended", "suspended"),  # no change: no news
        (5, "suspended", "online"),
    ):
        NodeEpoch.objects.create(
            node=node, epoch=epoch, assigned=3, reports=3, valid=True, status_before=before, status_after=after
        )
    look()
    look()
    events = list(Notification.objects.filter(user=provider).order_by("id").values_list("event", "title"))
    assert [e for e, _ in events] == [Event.NODE_DEGRADED, Event.NODE_SUSPENDED, Event.NODE_ONLINE]
    assert all("ups-h100" in title for _, title in events)


def test_the_readmes_signature_check_accepts_a_real_delivery_and_nothing_else(genesis, loopback_allowed, receiver):
    # The ten lines a receiver copies from the README, run as they are written there.
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [snippet] = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "def verify(secret" in b]
    assert len([line for line in snippet.splitlines() if line.strip()]) <= 10
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102  our own README
    verify = namespace["verify"]

    user = UserFactory()
    endpoint = services.add_endpoint(user, receiver.url)
    services.notify([user.pk], Event.CONTAINER_EXITED, "readme", "Rental 1: the container exited")
    [sent] = delivery.run_due()
    assert sent.state == DeliveryState.DELIVERED
    [call] = receiver.received
    assert verify(endpoint.secret, call["headers"], call["body"])
    assert not verify(endpoint.secret, call["headers"], call["body"] + b" ")
    assert not verify("another secret", call["headers"], call["body"])
    stale = {**call["headers"], "X-Aethir-Timestamp": str(int(time.time()) - 3600)}
    assert not verify(endpoint.secret, stale, call["body"])


def test_production_sends_mail_by_smtp_from_the_environment_and_webhooks_only_over_https(tmp_path):
    import secrets

    from ..platform.test_settings import run_manage

    show = (
        "from django.conf import settings as s; m = s.MAILERS['default']; "
        "print(m['BACKEND'], m.get('OPTIONS', {}).get('host'), m.get('OPTIONS', {}).get('port'), "
        "s.WEBHOOKS_ALLOW_HTTP, repr(s.WEBHOOKS_ALLOW_NETS))"
    )
    production = run_manage(
        "shell",
        "-c",
        show,
        DEBUG="0",
        DEMO_MODE="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        LEDGER_SIGNING_KEY=secrets.token_hex(32),
        EMAIL_HOST="smtp.example.org",
        EMAIL_PORT="2525",
        AETHIR_VAR_DIR=str(tmp_path),
    )
    assert production.returncode == 0, production.stderr
    assert production.stdout.strip().splitlines()[-1].split() == [
        "django.core.mail.backends.smtp.EmailBackend",
        "smtp.example.org",
        "2525",
        "False",
        "''",
    ]
    demo = run_manage("shell", "-c", show, DEBUG="0", DEMO_MODE="1", AETHIR_VAR_DIR=str(tmp_path))
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.strip().splitlines()[-1].split()[0] == "django.core.mail.backends.console.EmailBackend"


def test_a_slow_name_server_counts_against_the_attempts_time_limit(genesis, settings, monkeypatch):
    # A receiver's own name server, answering slowly, must not hold a sender
    # thread (and the delivery's claim) past the limit either.
    from apps.notifications import targets

    settings.WEBHOOKS_ALLOW_HTTP = False
    settings.WEBHOOKS_ALLOW_NETS = ""
    real = targets.socket.getaddrinfo

    def slow_getaddrinfo(host, *args, **kwargs):
        if host == "slow-dns.example.org":
            time.sleep(4)
            return [(2, 1, 6, "", ("93.184.215.14", 443))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(targets.socket, "getaddrinfo", slow_getaddrinfo)
    monkeypatch.setattr(delivery, "TIMEOUT", 0.5)
    user = UserFactory()
    endpoint = WebhookEndpoint.objects.create(user=user, url="https://slow-dns.example.org/hook", secret="s")
    services.notify([user.pk], Event.ESCROW_LOW, "dns", "dns")
    assert Delivery.objects.filter(endpoint=endpoint).exists()
    started = time.monotonic()
    [d] = delivery.run_due()
    assert time.monotonic() - started < 2.5
    assert d.state == DeliveryState.PENDING and "resolve" in d.last_error


def test_an_endless_answer_is_read_only_up_to_the_size_limit(genesis, loopback_allowed):
    from .receiver import FloodingReceiver

    flooding = FloodingReceiver()
    try:
        user = UserFactory()
        services.add_endpoint(user, flooding.url)
        services.notify([user.pk], Event.ESCROW_LOW, "flood", "flood")
        [d] = delivery.run_due()
        assert flooding.finished.wait(10)  # the sender hung up on it
    finally:
        flooding.close()
    assert d.state == DeliveryState.DELIVERED and d.last_status == 200
    # What was read is the limit; what the receiver got out beyond it sat in socket buffers.
    assert flooding.sent < 32 * 1024 * 1024

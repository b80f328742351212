"""Scripting and alerts from a browser, on a server of its own: a provider
makes a personal API token (shown once, then usable from a script) and a
webhook endpoint pointing at a receiver on the loopback; when checker
consensus degrades their node, the notification worker delivers a
correctly signed call to the receiver, the bell counts it live, and the
endpoint's delivery log shows the receiver's answer."""

import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from ..notifications.receiver import Receiver
from .conftest import ROOT, sign_up

pytestmark = pytest.mark.browser

WORKER_READY = "from apps.notifications.models import Cursor; print(Cursor.objects.filter(name='node-status').exists())"

DEGRADE = """
from django.contrib.auth.models import User
from apps.core.models import GpuNode, NodeStatus
from apps.monitoring import assignment, consensus
from apps.monitoring.models import CheckerReport
from tests.factories import make_checker, make_node
node, _ = make_node(User.objects.get(username="hook-owner"), name="owner-h100")
GpuNode.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)
[make_checker() for _ in range(3)]
assignment.fix_round(0)
for checker_id in node.assignments.filter(epoch=0).values_list("checker_id", flat=True):
    CheckerReport.objects.create(epoch=0, node=node, checker_id=checker_id, probes=10, uptime_ppm=950_000,
        task_ppm=950_000, latency_ms=30, spec_ok=True, gpu_name_seen=node.gpu_model.name, gpu_count_seen=1,
        payload_hash="x", signature="y")
consensus.finalize(0)
print(GpuNode.objects.get(pk=node.pk).status)
"""


def signed_correctly(secret: str, headers: dict, body: bytes) -> bool:
    """The receiver's check, as the README shows it."""
    timestamp = headers["x-aethir-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        return False
    expected = "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-aethir-signature"])


def test_token_webhook_and_a_signed_delivery_when_the_node_degrades(private_server, new_page, shot):
    server = private_server(WEBHOOKS_ALLOW_HTTP="1", WEBHOOKS_ALLOW_NETS="127.0.0.0/8").start()
    receiver = Receiver()
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_notifications", "--interval", "0.3", "--detect-every", "0.5"],
        env=server.env,
        cwd=ROOT,
        stdout=open(server.var / "worker.log", "w"),  # noqa: SIM115  closed with the process
        stderr=subprocess.STDOUT,
    )
    try:
        page = new_page()
        sign_up(page, server.url, "hook-owner", faucet_claims=0)

        # A token, shown once, works from a script.
        page.get_by_test_id("developer-link").click()
        page.get_by_label("Name").fill("laptop")
        page.get_by_label("Rent and provide").check()
        page.get_by_role("button", name="Create token").click()
        token = page.get_by_test_id("new-token-value").inner_text().strip()
        assert re.fullmatch(r"ath_[0-9a-f]{8}_\S+", token)
        shot(page, "developer-token")
        request = urllib.request.Request(server.url + "/api/wallet/", headers={"Authorization": f"Bearer {token}"})
        wallet = json.loads(urllib.request.urlopen(request, timeout=10).read())
        assert wallet["account"]["address"]
        page.reload()
        expect(page.get_by_test_id("token-list")).to_contain_text("laptop")
        assert token not in page.content()

        # A webhook endpoint at the receiver.
        page.goto(server.url + "/notifications/settings/")
        page.get_by_label("Endpoint URL").fill(receiver.url)
        page.get_by_label("Description").fill("pager")
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.get_by_test_id("endpoint-url")).to_have_text(receiver.url)
        secret = page.get_by_test_id("endpoint-secret").inner_text().strip()
        endpoint_page = page.url

        # The bell listens; the worker has made its first pass.
        expect(page.locator("[data-bell-live=connected]")).to_be_attached()
        deadline = time.monotonic() + 30
        while server.manage("shell", "-c", WORKER_READY).stdout.strip().splitlines()[-1:] != ["True"]:
            assert time.monotonic() < deadline, (server.var / "worker.log").read_text()
            time.sleep(0.3)

        assert server.manage("shell", "-c", DEGRADE).stdout.strip().splitlines()[-1] == "degraded"

        expect(page.get_by_test_id("bell-count")).to_have_text("1", timeout=30_000)  # pushed, no reload
        deadline = time.monotonic() + 30
        while not receiver.received:
            assert time.monotonic() < deadline, "no delivery reached the receiver"
            time.sleep(0.2)
        [call] = receiver.received
        headers = {k.lower(): v for k, v in call["headers"].items()}
        assert signed_correctly(secret, headers, call["body"])
        assert not signed_correctly(secret, headers, call["body"] + b" ")
        payload = json.loads(call["body"])
        assert payload["event"] == "node.degraded" and payload["data"]["node_name"] == "owner-h100"

        page.goto(endpoint_page)
        log = page.get_by_test_id("delivery-log")
        expect(log).to_contain_text("node.degraded")
        expect(log).to_contain_text("delivered")
        expect(log).to_contain_text("200")
        shot(page, "developer-webhook-log")

        page.get_by_test_id("bell").click()
        expect(page.get_by_test_id("notifications")).to_contain_text("Node owner-h100 is degraded")
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        receiver.close()

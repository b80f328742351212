"""The marketplace from a browser, on a server of its own with 10 s epochs:

a provider registers a node through the onboarding form and starts its
real provider agent with the token shown once; a real checker agent
verifies it until checker consensus puts it online. A renter then filters
the catalogue (htmx, shareable URL), rents the node with the confirm step,
sees the active rental with its escrow, ends it and finds the unserved time
refunded in the wallet, to the micro-ATH."""

import json
import re
import time

import pytest
from playwright.sync_api import expect

from .conftest import (
    free_port,
    htmx_ready,
    no_csp_errors,
    sign_up,
    start_checker,
    start_provider_agent,
    stop_agents,
    uath,
)

pytestmark = pytest.mark.browser

SETUP = """
import json
from django.contrib.auth.models import User
from apps.core import parameters
from apps.core.models import AgentToken, CheckerNode
parameters.apply({"epoch_seconds": 10, "replication": 1, "report_quorum": 1}, effective_epoch=0, source="e2e",
                 by_governance=False)
operator = User.objects.create_user("operator1", password="x-long-password-1")
checker = CheckerNode.objects.create(operator=operator, name="e2e-checker", status="active")
_, token = AgentToken.issue(checker=checker)
print(json.dumps({"checker_token": token}))
"""

FIX_ROUND = "from apps.settlement import services; services.fix_current_round()"
STATUS = "from apps.core.models import GpuNode; print(GpuNode.objects.get(name='fra-l40s').status)"


def test_provider_onboards_and_a_renter_rents_and_ends(private_server, new_page, shot, tmp_path):
    server = private_server().start()
    ids = json.loads(server.manage("shell", "-c", SETUP).stdout.strip().splitlines()[-1])
    port = free_port()

    # --- The provider: onboarding form, token shown once ---------------------------
    provider = new_page()
    sign_up(provider, server.url, "gpu-host")
    provider.goto(server.url + "/marketplace/provide/")
    shot(provider, "marketplace-provider-empty")
    provider.get_by_test_id("register-node").click()
    htmx_ready(provider, "form[hx-get]")
    provider.get_by_label("Node name").fill("fra-l40s")
    provider.get_by_label("GPU model").select_option(label="NVIDIA L40S 48GB")
    expect(provider.get_by_test_id("collateral-needed")).to_have_text("3,000 ATH", timeout=10_000)
    provider.get_by_label("Region").select_option(label="Europe Central (Frankfurt)")
    provider.get_by_label("Bandwidth (Mbps)").fill("50")
    provider.get_by_label("Price per GPU-hour (ATH)").fill("1.8")
    provider.get_by_label("Agent endpoint").fill(f"http://127.0.0.1:{port}/health")
    provider.get_by_test_id("register-submit").click()
    expect(provider.locator(".form-errors")).to_contain_text(
        "50 Mbps is below the network's bandwidth floor of 100 Mbps."
    )
    shot(provider, "marketplace-onboarding-refused")
    provider.get_by_label("Bandwidth (Mbps)").fill("10000")
    provider.get_by_test_id("register-submit").click()
    token = provider.get_by_test_id("agent-token").inner_text().strip()
    assert token.startswith("agt_")
    expect(provider.get_by_test_id("agent-command")).to_contain_text(
        f"run_provider_agent --api-url {server.url} --token {token}"
    )
    shot(provider, "marketplace-token-once")

    logs = [open(tmp_path / "provider.log", "w"), open(tmp_path / "checker.log", "w")]
    agents = [
        start_provider_agent(server, token, port, logs[0]),
        start_checker(server, ids["checker_token"], tmp_path / "checker.pem", logs[1], probe_every=1),
    ]
    try:
        # Checker consensus (closed each finished epoch) brings the node online.
        # Each epoch's round is fixed as it starts, as the scheduler does.
        deadline = time.monotonic() + 90
        while server.manage("shell", "-c", STATUS).stdout.strip().splitlines()[-1:] != ["online"]:
            assert time.monotonic() < deadline, _diagnose(server, tmp_path)
            server.manage("shell", "-c", FIX_ROUND)
            server.manage("close_epochs", "--grace", "1")
            time.sleep(1)

        # --- The renter: filter, rent, see escrow, end, refund ---------------------
        page = new_page()
        sign_up(page, server.url, "ada")
        page.get_by_role("link", name="Marketplace").first.click()
        htmx_ready(page, "#filters")
        page.get_by_label("GPU model").select_option(label="NVIDIA L40S 48GB · 48 GB")
        expect(page).to_have_url(re.compile(r"gpu=l40s"), timeout=10_000)  # htmx kept the URL shareable
        expect(page.get_by_test_id("result-count")).to_have_text("1 node")
        page.get_by_label("I am near").select_option(label="Europe West (Dublin)")
        expect(page.get_by_test_id("offer")).to_contain_text("ms")
        shot(page, "marketplace-catalogue")
        shared = page.url
        page.goto(shared)  # the shared link shows the same list
        expect(page.get_by_test_id("offer-name")).to_have_text("fra-l40s")

        page.get_by_test_id("offer-rent").click()
        expect(page.get_by_role("heading", name=re.compile("NVIDIA L40S"))).to_be_visible()
        page.wait_for_timeout(1000)  # the uptime chart draws
        shot(page, "marketplace-node")
        page.get_by_label("Duration (hours)").fill("2")
        page.get_by_label("Container image").fill("ollama/ollama:latest")
        page.get_by_test_id("rent-continue").click()
        escrow_text = page.get_by_test_id("confirm-escrow").inner_text()
        # 1.8 ATH/h x 10 s / 3600 s = 5,000 uATH per epoch; 2 h = 720 epochs.
        assert uath(escrow_text) == 720 * 5_000
        shot(page, "marketplace-confirm")
        page.get_by_test_id("confirm-rent").click()

        expect(page).to_have_url(re.compile(r"/marketplace/rentals/\d+/$"))
        expect(page.get_by_test_id("rental-status")).to_have_text("Active")
        expect(page.get_by_test_id("escrow-left")).to_have_text("3.6 ATH")
        expect(page.get_by_test_id("node-status")).to_have_text("Online")
        page.wait_for_timeout(1500)  # charts draw
        shot(page, "marketplace-rental-active")

        page.get_by_test_id("end-rental").click()
        page.get_by_test_id("confirm-end").click()
        expect(page.locator("#messages")).to_contain_text("of unserved time is back in your wallet")
        refund = uath(page.locator("#messages").inner_text().split("Rental ended. ")[1])
        kept = 3_600_000 - refund
        assert kept % 5_000 == 0 and 5_000 <= kept <= 3 * 5_000  # the epochs served so far stay in escrow
        expect(page.get_by_test_id("rental-status")).to_have_text("Ended")
        expect(page.get_by_test_id("refunded")).to_have_text(_ath(refund))
        shot(page, "marketplace-rental-ended")

        page.get_by_test_id("wallet-link").click()
        expect(page.get_by_test_id("balance-available")).to_have_text(_ath(10_000 * 1_000_000 - kept))
        expect(page.get_by_test_id("balance-total")).to_have_text("10,000 ATH")
        shot(page, "marketplace-wallet-refund")

        provider.goto(server.url + "/marketplace/provide/")
        expect(provider.get_by_test_id("provider-node-row")).to_contain_text("Online")
        shot(provider, "marketplace-provider-dashboard")
        no_csp_errors(page, provider)
    finally:
        stop_agents(agents, logs)


def _ath(micro: int) -> str:
    from apps.core.amounts import format_uath

    return format_uath(micro)


def _diagnose(server, tmp_path) -> str:
    out = server.manage(
        "shell",
        "-c",
        (
            "from apps.monitoring.models import *; from apps.core import epochs;"
            "print('epoch', epochs.current_number(), 'assign', list(Assignment.objects.values_list('epoch','node_id')),"
            "'reports', list(CheckerReport.objects.values_list('epoch','uptime_ppm','latency_ms','spec_ok')),"
            "'node_epochs', list(NodeEpoch.objects.values_list('epoch','valid','uptime_ppm','status_after')))"
        ),
        check=False,
    )
    return "\n".join(
        [
            out.stdout,
            out.stderr[-1500:],
            (tmp_path / "checker.log").read_text()[-1500:],
            (tmp_path / "provider.log").read_text()[-1500:],
        ]
    )

"""A provider agent and a checker agent as real processes against a real
server: telemetry and a signed report land, and the node's page updates
over its WebSocket without a reload."""

import json
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from .conftest import ROOT, free_port, start_checker, start_provider_agent, stop_agents, wait_until_live

pytestmark = pytest.mark.browser

SETUP = """
import json
from apps.core import parameters
from apps.core.amounts import ath
from apps.core.models import AgentToken, CheckerNode, GpuModel, Region
from apps.core import ledger
from apps.core.models import ModuleAccount, TxKind
from django.contrib.auth.models import User
from apps.marketplace.onboarding import NodeSpec, register_node, required_collateral
parameters.apply({"epoch_seconds": 10}, effective_epoch=0, source="e2e", by_governance=False)
provider = User.objects.create_user("provider1", password="x-long-password-1")
model = GpuModel.objects.get(slug="h100-80gb")
faucet = ledger.module_account(ModuleAccount.FAUCET)
ledger.transfer(faucet, provider.wallet, required_collateral(model, 2), kind=TxKind.FAUCET)
node, node_token = register_node(provider, NodeSpec(name="e2e-h100", gpu_model=model, gpu_count=2, vcpu=32, ram_gb=256,
    region=Region.objects.get(code="eu-west"), bandwidth_mbps=10000, price_per_gpu_hour=ath(2), endpoint="http://127.0.0.1:PORT/health"))
operator = User.objects.create_user("operator1", password="x-long-password-1")
checker = CheckerNode.objects.create(operator=operator, name="e2e-checker", status="active")
_, checker_token = AgentToken.issue(checker=checker)
print(json.dumps({"node": node.pk, "node_token": node_token, "checker": checker.pk, "checker_token": checker_token}))
"""


def test_agents_feed_the_live_node_page(private_server, new_page, shot, tmp_path):
    server = private_server().start()
    port = free_port()
    out = server.manage("shell", "-c", SETUP.replace("PORT", str(port))).stdout
    ids = json.loads(out.strip().splitlines()[-1])

    # The page is open before the agents start, so everything that follows
    # can only have reached it over the WebSocket.
    page = new_page()
    page.goto(f"{server.url}/monitoring/nodes/{ids['node']}/")
    expect(page.get_by_role("heading", name="e2e-h100")).to_be_visible()
    expect(page.locator("#node-reports")).to_contain_text("No reports yet")
    expect(page.get_by_test_id("last-heartbeat")).to_have_text("none recorded")
    wait_until_live(page)

    manage = [sys.executable, str(ROOT / "manage.py")]
    logs = [open(tmp_path / name, "w") for name in ("provider.log", "checker.log", "scheduler.log")]
    agents = [
        start_provider_agent(server, ids["node_token"], port, logs[0]),
        start_checker(server, ids["checker_token"], tmp_path / "checker.pem", logs[1], probe_every=2),
        # Fixes each epoch's round as it starts; agents only read it.
        subprocess.Popen(
            [*manage, "run_scheduler"], env=server.env, cwd=ROOT, stdout=logs[2], stderr=subprocess.STDOUT
        ),
    ]
    try:
        # Telemetry arrives first (every 2 s), then the checker's signed report
        # near the end of the first 10 s epoch it saw whole (it sits out the
        # epoch it started in): both appear without a reload.
        expect(page.get_by_test_id("last-heartbeat")).not_to_have_text("none recorded", timeout=20_000)
        expect(page.locator("#node-reports")).to_contain_text("e2e-checker", timeout=45_000)
        # The GPU facts the agent serves match the declared spec. (Uptime can be
        # below 100% here: the checker may probe before the agent listens.)
        expect(page.locator("#node-reports")).to_contain_text("✔ 2× NVIDIA H100 80GB")
        shot(page, "monitoring-node-live")
        page.goto(f"{server.url}/monitoring/checkers/{ids['checker']}/")
        expect(page.get_by_test_id("checker-delivered")).to_be_visible()
        page.goto(f"{server.url}/monitoring/")
        expect(page.get_by_test_id("utilisation")).not_to_have_text("—")
        shot(page, "monitoring-overview")
        assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors
    finally:
        stop_agents(agents, logs)

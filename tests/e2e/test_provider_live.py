"""The provider's own node page follows the node live: left open while the
node waits for its first consensus, it reads "pending" (never "Health 0%"),
and when checkers' consensus puts the node online its status and health
change without a reload, with nothing on the page left saying "pending"."""

import json
import re

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD, log_in, wait_until_live

pytestmark = pytest.mark.browser

SETUP = """
import json
from django.contrib.auth.models import User
from apps.core import ledger
from apps.core.models import GpuModel, ModuleAccount, Region, TxKind
from apps.marketplace.onboarding import NodeSpec, register_node, required_collateral
from apps.core.amounts import ath
provider = User.objects.create_user("live-provider", password="PASSWORD")
model = GpuModel.objects.get(slug="h100-80gb")
faucet = ledger.module_account(ModuleAccount.FAUCET)
ledger.transfer(faucet, provider.wallet, required_collateral(model, 1), kind=TxKind.FAUCET)
spec = NodeSpec(name="live-h100", gpu_model=model, gpu_count=1, vcpu=16, ram_gb=128,
    region=Region.objects.get(code="eu-west"), bandwidth_mbps=10000, price_per_gpu_hour=ath(2),
    endpoint="http://127.0.0.1:9/health")
node, _ = register_node(provider, spec)
print(json.dumps({"node": node.pk}))
"""

# What closing an epoch does for this page: the node's status and health
# change, then the epoch's consensus hint goes out through the outbox.
ONLINE = """
from apps.core import epochs
from apps.core.models import GpuNode, NodeStatus
from apps.monitoring import live
GpuNode.objects.filter(pk={pk}).update(status=NodeStatus.ONLINE, health_score=970_000)
live.consensus_recorded(epochs.current_number() - 1)
"""


def test_the_providers_node_page_goes_online_without_a_reload(private_server, new_page, shot):
    server = private_server().start()
    out = server.manage("shell", "-c", SETUP.replace("PASSWORD", PASSWORD)).stdout
    node = json.loads(out.strip().splitlines()[-1])["node"]

    page = new_page()
    log_in(page, server.url, "live-provider", PASSWORD)
    page.goto(f"{server.url}/marketplace/provide/nodes/{node}/")
    expect(page.get_by_test_id("node-status")).to_have_text("Pending verification")
    expect(page.get_by_test_id("node-health")).to_have_text("pending")
    expect(page.locator("main")).not_to_contain_text("0%")
    wait_until_live(page)
    page.evaluate("window.openedOnce = true")  # gone if the page ever reloads

    server.manage("shell", "-c", ONLINE.format(pk=node))

    expect(page.get_by_test_id("node-status")).to_have_text("Online", timeout=10_000)
    expect(page.get_by_test_id("node-health")).to_have_text("97%")
    expect(page.locator("main")).not_to_contain_text(re.compile("pending", re.I))  # none left behind
    assert page.evaluate("window.openedOnce") is True
    shot(page, "provider-node-online-live")
    assert not page.console_errors, page.console_errors

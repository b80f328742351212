"""The run command itself: ``run_demo`` (what ``make run`` starts) with a
small network and 20 s epochs, its simulator and scheduler running. In the
browser, at the same time:

* a provider registers a node without an agent endpoint (the demo's
  simulator brings it to life), watches it go from pending to online on
  its live monitoring page without a reload, and finds it paid its capacity
  reward on the provider dashboard: verified, settled and paid within three
  epochs of registering it;
* a delegator delegates to a checker, sees rewards after an epoch settles,
  and undelegates, which pays them out;
* the monitoring overview, open all along, keeps updating without a reload.
"""

import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from .conftest import ROOT, free_port, wait_until_live

pytestmark = pytest.mark.browser

EPOCH = 20  # seconds
NODES, CHECKERS = 40, 6


def uath(text: str) -> int:
    """'9,998.0001 ATH' -> micro-ATH, exactly."""
    number = re.search(r"-?[\d,]+(?:\.\d+)?", text).group(0).replace(",", "")
    return int(Decimal(number) * 1_000_000)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """``manage.py run_demo`` as a user starts it, on a database of its own."""
    var = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "DEMO_MODE"}}
    env.update(AETHIR_VAR_DIR=str(var), PYTHONUNBUFFERED="1")
    port = free_port()
    log_path = var / "demo.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_demo", "--port", str(port), "--nodes", str(NODES),
         "--checkers", str(CHECKERS), "--epoch-seconds", str(EPOCH)],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 240
        while "Agents running" not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the demo did not come up:\n" + log_path.read_text()[-4000:])
            time.sleep(0.5)
        yield {"url": f"http://127.0.0.1:{port}", "log": log_path, "env": env}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def sign_up_with_faucet(page, url, username):
    page.goto(url + "/accounts/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill("living-network-2026")
    page.get_by_label("Password confirmation").fill("living-network-2026")
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/accounts/wallet/$"))
    page.get_by_test_id("faucet-button").click()
    expect(page.get_by_test_id("balance-available")).to_have_text("10,000 ATH")


def reload_until(page, locator, check, timeout_s: float, every_ms: int = 2_000):
    """What a person does on a page that is not live: reload now and then
    until ``check(text)`` holds (bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = locator.inner_text()
        if check(text):
            return text
        assert time.monotonic() < deadline, f"still {text!r} after {timeout_s:.0f}s"
        page.wait_for_timeout(every_ms)
        page.reload()


def test_a_node_registered_in_the_browser_is_verified_settled_and_paid(demo, new_page, shot):
    url = demo["url"]

    # --- The monitoring overview stays open, never reloaded ---------------------------
    overview = new_page()
    overview.goto(url + "/monitoring/")
    wait_until_live(overview)
    overview.evaluate("window.openedOnce = true")  # gone if the page ever reloads
    expect(overview.get_by_test_id("gpus-online")).not_to_have_text("0")
    first_epoch = overview.get_by_test_id("reports-this-epoch").locator("xpath=..").inner_text()
    shot(overview, "demo-monitoring-start")

    # --- A provider registers a node and lets the demo run its agent -------------------
    provider = new_page()
    sign_up_with_faucet(provider, url, "fresh-provider")
    provider.goto(url + "/marketplace/provide/")
    provider.get_by_test_id("register-node").click()
    provider.get_by_label("Node name").fill("my-first-l40s")
    provider.get_by_label("GPU model").select_option(label="NVIDIA L40S 48GB")
    provider.get_by_label("Region").select_option(label="Europe Central (Frankfurt)")
    expect(provider.get_by_label("Agent endpoint")).to_have_value("")
    provider.get_by_test_id("register-submit").click()
    expect(provider.get_by_role("heading", name="my-first-l40s is registered")).to_be_visible()
    expect(provider.get_by_test_id("simulated-agent")).to_contain_text("The demo runs its agent")
    shot(provider, "demo-provider-registered")
    provider.get_by_role("link", name="Go to the node").click()
    registered_in = int(re.search(r"now epoch (\d+)", provider.locator("main").inner_text()).group(1))
    node_url = provider.url

    # --- A delegator backs a checker -----------------------------------------------------
    delegator = new_page()
    sign_up_with_faucet(delegator, url, "fresh-delegator")
    delegator.goto(url + "/staking/")
    # Any active checker but the operator's demo one (the simulator makes it lie).
    row = delegator.get_by_test_id("checker-row").filter(has_text="checker-0003")
    expect(row).to_contain_text("Active")
    row.get_by_role("link", name="checker-0003").click()
    delegator.get_by_label("Amount to delegate (ATH)").fill("1000")
    delegator.get_by_test_id("delegate-button").click()
    expect(delegator.locator("#messages")).to_contain_text("Delegated 1,000 ATH to checker-0003")
    expect(delegator.get_by_test_id("me-pending")).to_have_text("0 ATH")
    shot(delegator, "demo-delegator-delegated")

    # --- The node goes pending -> online on its live page, no reload -------------------
    watch = provider.context.new_page()  # the provider's second tab
    watch.console_errors = []
    watch.on("console", lambda msg: watch.console_errors.append(msg.text) if msg.type == "error" else None)
    watch.goto(node_url)
    watch.get_by_role("link", name="live monitoring").click()
    expect(watch.get_by_role("heading", name="my-first-l40s")).to_be_visible()
    wait_until_live(watch)
    watch.evaluate("window.openedOnce = true")
    expect(watch.get_by_test_id("last-heartbeat")).not_to_have_text("never", timeout=EPOCH * 1_000)
    expect(watch.get_by_test_id("node-status")).to_have_text("Online", timeout=4 * EPOCH * 1_000)
    assert watch.evaluate("window.openedOnce") is True
    expect(watch.locator("#node-reports")).to_contain_text("✔ 1× NVIDIA L40S 48GB")
    shot(watch, "demo-node-online")

    # --- ... and is paid: the provider dashboard shows its capacity reward ------------
    provider.goto(url + "/marketplace/provide/")
    row = provider.get_by_test_id("provider-node-row").filter(has_text="my-first-l40s")
    reload_until(provider, row.get_by_test_id("node-rewards"), lambda t: uath(t) > 0, 2 * EPOCH)
    expect(row).to_contain_text("Online")
    assert uath(provider.get_by_test_id("rewards-total").inner_text()) > 0
    shot(provider, "demo-provider-dashboard-paid")
    provider.goto(node_url)
    rewards = provider.get_by_test_id("node-rewards")
    first_paid = min(int(e) for e in rewards.locator("tbody tr td:first-child").all_inner_texts())
    # Verified, settled and paid within three epochs of registering it.
    assert first_paid <= registered_in + 2, (registered_in, first_paid)
    expect(rewards).to_contain_text("my-first-l40s: weight")
    shot(provider, "demo-provider-node-paid")
    provider.get_by_test_id("wallet-link").click()
    # 10,000 ATH from the faucet, 3,000 locked as collateral, plus what it earned.
    assert uath(provider.get_by_test_id("balance-available").inner_text()) > 7_000 * 1_000_000

    # --- The delegator's rewards after an epoch settles, then undelegates -------------
    delegator.goto(url + "/staking/me/")
    reload_until(delegator, delegator.get_by_test_id("me-pending"), lambda t: uath(t) > 0, 3 * EPOCH)
    pending = uath(delegator.get_by_test_id("me-pending").inner_text())
    shot(delegator, "demo-delegator-rewards")
    delegator.get_by_role("link", name="manage").click()
    delegator.get_by_label("Amount to undelegate (ATH)").fill("1000")
    delegator.get_by_test_id("undelegate-button").click()
    expect(delegator).to_have_url(re.compile(r"/staking/me/$"))
    expect(delegator.get_by_test_id("me-bonded")).to_have_text("0 ATH")
    expect(delegator.get_by_test_id("me-unbonding")).to_have_text("1,000 ATH")
    expect(delegator.get_by_test_id("me-pending")).to_have_text("0 ATH")
    # The rewards were paid out as the position closed (at least what was pending).
    received = delegator.get_by_role("heading", name="Rewards received").locator("xpath=following-sibling::div[1]")
    expect(received).to_contain_text("paid as the position closed")
    assert uath(delegator.get_by_test_id("me-available").inner_text()) >= 9_000 * 1_000_000 + pending
    shot(delegator, "demo-delegator-undelegated")

    # --- The overview moved on by itself ------------------------------------------------
    expect(overview.get_by_test_id("reports-this-epoch").locator("xpath=..")).not_to_have_text(first_epoch)
    assert overview.evaluate("window.openedOnce") is True
    shot(overview, "demo-monitoring-later")

    for p in (overview, provider, delegator, watch):
        assert not [e for e in p.console_errors if "Content Security Policy" in e or "Refused" in e], p.console_errors

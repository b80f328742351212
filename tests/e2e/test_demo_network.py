"""The run command itself: ``run_demo`` (what ``make run`` starts) with a
small network and 20 s epochs, its simulator, simulated holders and
scheduler running. In the browser:

* a demo holder votes on the proposal the holders keep open, and a second
  browser watching it sees the tally move without reloading;
* a renter lets the scheduler match a node, rents it with the confirm step,
  sees its workload reported running, plainly simulated, watches its live
  metrics arrive without a reload, ends early and finds the unserved time
  refunded;
* a renter launches the web page template on one of the demo's nodes on
  this machine (real agents, a real container engine), opens its endpoint
  and reads the page, ends the rental, and the container is gone;

and then, at the same time:

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

import pytest
from playwright.sync_api import expect

from ..monitoring import container_engine as engine
from .conftest import ROOT, Backing, free_port, log_in, no_csp_errors, sign_up, uath, wait_until_live

pytestmark = pytest.mark.browser

EPOCH = 20  # seconds
NODES, CHECKERS = 40, 6
LOCAL = "this-machine-"  # the demo's nodes on this machine (apps.demo.local_nodes)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """``manage.py run_demo`` as a user starts it, on a database of its own."""
    var = tmp_path_factory.mktemp("demo")
    backing = Backing()  # its own database (and Redis prefix) in the PostgreSQL + Redis pass
    env = {k: v for k, v in backing.env(os.environ).items() if k not in {"DEBUG", "DEMO_MODE"}}
    # The tests' container engine: the demo finds it and runs its nodes on this machine there.
    env.update(AETHIR_VAR_DIR=str(var), PYTHONUNBUFFERED="1", CONTAINER_ENGINE_URL=engine.engine_url())
    port = free_port()
    log_path = var / "demo.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "run_demo",
            "--port",
            str(port),
            "--nodes",
            str(NODES),
            "--checkers",
            str(CHECKERS),
            "--epoch-seconds",
            str(EPOCH),
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
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
        backing.drop()


def wait_for_text(locator, check, timeout_s: float, *, reload_every_ms: int | None = None):
    """Wait until ``check(text)`` holds (bounded). Live pages change by
    themselves; on one that is not live, do what a person does and reload
    it now and then (``reload_every_ms``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = locator.inner_text()
        if check(text):
            return text
        assert time.monotonic() < deadline, f"still {text!r} after {timeout_s:.0f}s"
        if reload_every_ms:
            locator.page.wait_for_timeout(reload_every_ms)
            locator.page.reload()
        else:
            time.sleep(0.5)


def test_a_holder_votes_on_the_open_proposal_and_a_watcher_sees_the_tally_move(demo, new_page, shot):
    from apps.demo.seed import DEMO_PASSWORD

    url = demo["url"]
    page = new_page()
    log_in(page, url, "voter", DEMO_PASSWORD)
    page.goto(url + "/governance/?status=voting")
    page.get_by_test_id("proposal-row").first.get_by_role("link").nth(1).click()
    expect(page.get_by_test_id("status")).to_have_text("Voting")
    power = uath(page.get_by_test_id("my-power").inner_text())
    assert power > 0  # the voter held ATH at the snapshot
    proposal_url = page.url

    watcher = new_page()  # not logged in
    watcher.goto(proposal_url)
    wait_until_live(watcher)
    watcher.evaluate("window.openedOnce = true")
    yes_before = uath(watcher.get_by_test_id("tally-yes").inner_text())
    voters_before = int(watcher.get_by_test_id("voter-count").inner_text().split()[0].replace(",", ""))
    shot(watcher, "demo-governance-before")

    page.get_by_test_id("vote-yes").click()
    expect(page.get_by_test_id("my-vote")).to_contain_text("Yes")
    # The simulated holders vote too, so the tally moves by at least the voter's power.
    wait_for_text(watcher.get_by_test_id("tally-yes"), lambda t: uath(t) >= yes_before + power, 15)
    wait_for_text(
        watcher.get_by_test_id("voter-count"), lambda t: int(t.split()[0].replace(",", "")) >= voters_before + 1, 15
    )
    assert watcher.evaluate("window.openedOnce") is True  # it moved without a reload
    shot(page, "demo-governance-voted")
    shot(watcher, "demo-governance-watcher")
    no_csp_errors(page, watcher)


def test_a_renter_is_matched_rents_watches_live_and_ends_early(demo, new_page, shot):
    url = demo["url"]
    page = new_page()
    sign_up(page, url, "fresh-renter")
    page.goto(url + "/marketplace/match/")
    page.get_by_label("GPUs").fill("1")
    page.get_by_label("For how many hours").fill("2")
    page.get_by_label("I am in").select_option(label="Europe West (Dublin)")
    page.get_by_test_id("match-submit").click()
    # The demo's nodes on this machine run the image for real, and this one
    # needs a registry: take a simulated node.
    candidates = page.get_by_test_id("candidate").filter(has_not_text=LOCAL)
    first = candidates.first
    expect(first).to_contain_text("Health")
    expect(first).to_contain_text("Health")  # the ranking shows its working
    shot(page, "demo-renter-matched")
    expect(page).to_have_url(re.compile(r"/marketplace/match/\?.*count=1"))  # htmx kept the URL shareable
    match_url = page.url
    # The demo's simulated renters rent too: if one takes our pick between the
    # quote and the confirmation, do what a person would and take the next.
    for pick in range(3):
        page.goto(match_url)
        candidates.nth(pick).get_by_test_id("candidate-rent").click()
        page.get_by_label("Container image").fill("vllm/vllm-openai:latest")
        page.get_by_test_id("rent-continue").click()
        escrow = uath(page.get_by_test_id("confirm-escrow").inner_text())
        assert escrow > 0
        shot(page, "demo-renter-confirm")
        page.get_by_test_id("confirm-rent").click()
        page.wait_for_load_state()
        if re.search(r"/marketplace/rentals/\d+/$", page.url):
            break
        expect(page.locator("main")).to_contain_text("rented by someone else")
    expect(page).to_have_url(re.compile(r"/marketplace/rentals/\d+/$"))
    expect(page.get_by_test_id("rental-status")).to_have_text("Active")
    expect(page.get_by_test_id("node-status")).to_have_text("Online")
    # A simulated node runs no container, and the page says so.
    expect(page.get_by_test_id("workload-state")).to_have_text("Running", timeout=15_000)
    expect(page.get_by_test_id("workload-simulated")).to_contain_text("simulated: this demo node runs no container")

    # The node's telemetry keeps arriving on the open page (the simulator's agent posts it).
    wait_until_live(page)
    page.evaluate("window.openedOnce = true")
    beat = page.get_by_test_id("last-heartbeat").inner_text()
    expect(page.get_by_test_id("last-heartbeat")).not_to_have_text(beat, timeout=3 * EPOCH * 1_000)
    assert page.evaluate("window.openedOnce") is True
    shot(page, "demo-renter-live")

    page.get_by_test_id("end-rental").click()
    page.get_by_test_id("confirm-end").click()
    expect(page.locator("#messages")).to_contain_text("of unserved time is back in your wallet")
    expect(page.get_by_test_id("rental-status")).to_have_text("Ended")
    refunded = uath(page.get_by_test_id("refunded").inner_text())
    assert 0 < refunded < escrow  # the epochs served stay paid, the rest comes back
    shot(page, "demo-renter-ended")
    rental_url = page.url
    # Only the served epochs left the wallet: everything else is back, to the
    # micro-ATH, plus any SLA credit for a served epoch below the node's SLA
    # (paid when that epoch settles, so read both until they agree).
    served = escrow - refunded
    deadline = time.monotonic() + 3 * EPOCH
    while True:
        page.goto(rental_url)
        credits = page.get_by_test_id("sla-credits")
        credited = uath(credits.inner_text()) if credits.count() else 0
        page.get_by_test_id("wallet-link").click()
        balance = uath(page.get_by_test_id("balance-available").inner_text())
        if balance == 10_000 * 1_000_000 - served + credited or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert balance == 10_000 * 1_000_000 - served + credited
    assert credited < served  # a credit is a share of what was paid, never more
    no_csp_errors(page)


def local_nodes(demo) -> set[str]:
    """The ids of the demo's nodes on this machine, as ``run_demo`` lists them once all runs."""
    deadline = time.monotonic() + 60
    while not (found := re.findall(rf"{LOCAL}\d+: \S+/marketplace/nodes/(\d+)/", demo["log"].read_text())):
        assert time.monotonic() < deadline, "run_demo listed no nodes on this machine"
        time.sleep(0.5)
    return set(found)


def test_a_renter_launches_the_web_page_on_a_node_of_this_machine_and_opens_it(demo, new_page, shot):
    url = demo["url"]
    ours = local_nodes(demo)
    assert len(ours) == 3
    from apps.demo.seed import DEMO_PASSWORD

    page = new_page()
    log_in(page, url, "renter", DEMO_PASSWORD)  # as the README says (sign-ups per address are limited)
    # The nodes on this machine list first among Europe West's RTX 4090s.
    page.goto(url + "/marketplace/?gpu=rtx-4090&region=eu-west")
    offer = page.get_by_test_id("offer").filter(has_text=f"{LOCAL}1")
    expect(offer).to_contain_text("Online")
    offer.get_by_test_id("offer-rent").click()
    page.get_by_label("What to run").select_option(label="Web page (busybox httpd)")
    page.get_by_test_id("rent-continue").click()
    expect(page.locator(".confirm")).to_contain_text("localhost/aethir-web:1")
    page.get_by_test_id("confirm-rent").click()
    expect(page).to_have_url(re.compile(r"/marketplace/rentals/\d+/$"))
    lease = int(re.search(r"/rentals/(\d+)/$", page.url).group(1))
    try:
        expect(page.get_by_test_id("workload-state")).to_have_text("Running", timeout=15_000)
        assert not page.get_by_test_id("workload-simulated").count()
        with page.context.expect_page() as opened:
            page.get_by_test_id("endpoint-8080").click()
        expect(opened.value.get_by_role("heading", name="Aethir workload")).to_be_visible()
        shot(page, "demo-this-machine-running")
        page.get_by_test_id("end-rental").click()
        page.get_by_test_id("confirm-end").click()
        expect(page.get_by_test_id("rental-status")).to_have_text("Ended")
        client = engine.client()
        deadline = time.monotonic() + 20
        while client.containers.list(all=True, sparse=True, filters={"label": f"aethir.lease={lease}"}):
            assert time.monotonic() < deadline, "the container is still on the engine"
            time.sleep(0.3)
        client.close()
        no_csp_errors(page)
    finally:
        client = engine.client()
        for container in client.containers.list(all=True, sparse=True, filters={"label": f"aethir.lease={lease}"}):
            if container.labels.get("aethir.node") in ours:
                container.remove(force=True)
        client.close()


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
    sign_up(provider, url, "fresh-provider")
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
    sign_up(delegator, url, "fresh-delegator")
    delegator.goto(url + "/staking/")
    # Any active checker but the operator's demo one (the simulator makes it lie).
    row = delegator.get_by_test_id("checker-row").filter(has_text="checker-0003")
    expect(row).to_contain_text("Active")
    row.get_by_role("link", name="checker-0003").click()
    delegator.get_by_label("Amount to delegate (ATH)").fill("1000")
    delegator.get_by_test_id("delegate-button").click()
    expect(delegator.get_by_test_id("slash-warning")).to_be_visible()
    delegator.get_by_test_id("confirm-stake").click()
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
    # The simulator adopts the node within seconds and posts telemetry every
    # half epoch; the node joins the round fixed when the next epoch starts
    # and is judged by that epoch's settlement (a grace after it ends), a
    # round later if a checker of its first round sat that epoch out.
    expect(watch.get_by_test_id("last-heartbeat")).not_to_have_text("none recorded", timeout=2 * EPOCH * 1_000)
    expect(watch.get_by_test_id("node-status")).to_have_text("Online", timeout=6 * EPOCH * 1_000)
    assert watch.evaluate("window.openedOnce") is True
    expect(watch.locator("#node-reports")).to_contain_text("✔ 1× NVIDIA L40S 48GB")
    shot(watch, "demo-node-online")

    # --- ... and is paid: the provider dashboard shows its capacity reward ------------
    provider.goto(url + "/marketplace/provide/")
    row = provider.get_by_test_id("provider-node-row").filter(has_text="my-first-l40s")
    wait_for_text(row.get_by_test_id("node-rewards"), lambda t: uath(t) > 0, 2 * EPOCH, reload_every_ms=2_000)
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
    wait_for_text(delegator.get_by_test_id("me-pending"), lambda t: uath(t) > 0, 3 * EPOCH, reload_every_ms=2_000)
    pending = uath(delegator.get_by_test_id("me-pending").inner_text())
    shot(delegator, "demo-delegator-rewards")
    delegator.get_by_role("link", name="manage").click()
    delegator.get_by_label("Amount to undelegate (ATH)").fill("1000")
    delegator.get_by_test_id("undelegate-button").click()
    expect(delegator.get_by_test_id("slash-warning")).to_be_visible()
    delegator.get_by_test_id("confirm-stake").click()
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

    no_csp_errors(overview, provider, delegator, watch)

"""A renter's container on a real engine (Podman's Docker-compatible
service, ``tests/monitoring/container_engine.py``), driven from the
browser against a real server whose nodes' real provider agents run on
this machine:

* a renter launches the "web-demo" template, sees it go running within
  seconds, opens its endpoint and reads the page it serves, watches its log
  lines arrive over the rental page's WebSocket, ends the rental, and the
  container is gone from the engine;
* a node fails with the renter's container on it: the renter moves to a
  second node, whose agent starts the same workload, the timeline shows
  the move, and the first node's agent, back, removes the container of the
  lease it no longer holds.
"""

import json
import re
import signal
import subprocess
import time
import warnings

import pytest
from playwright.sync_api import expect

from ..monitoring import container_engine as engine
from .conftest import free_port, log_in, no_csp_errors, start_provider_agent, stop_agents, wait_until_live

pytestmark = pytest.mark.browser

PASSWORD = "x-long-password-1"
# The template's server, after a line of its own; -vv logs each request.
COMMAND = "sh -c 'echo hello from the workload; exec httpd -f -vv -p 8080 -h /www'"

SETUP = """
import json
from django.db import connection
from apps.core import ledger
from apps.core.amounts import ath
from apps.core.models import GpuModel, GpuNode, ModuleAccount, Region, TxKind
from django.contrib.auth.models import User
from apps.marketplace.onboarding import NodeSpec, register_node, required_collateral
faucet = ledger.module_account(ModuleAccount.FAUCET)
# Node ids of their own: the engine is shared, and its containers are known
# by node and lease (another server's node 1 must not be taken for ours).
table = GpuNode._meta.db_table
with connection.cursor() as c:
    if connection.vendor == "postgresql":
        c.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), FIRST_ID)")
    else:
        c.execute(f"UPDATE sqlite_sequence SET seq = FIRST_ID WHERE name = '{table}'")
        if not c.rowcount:
            c.execute(f"INSERT INTO sqlite_sequence (name, seq) VALUES ('{table}', FIRST_ID)")
provider = User.objects.create_user("host1", password="PASSWORD")
model = GpuModel.objects.get(slug="rtx-4090")
out = {}
for name, port in (("e2e-engine-a", PORT_A), ("e2e-engine-b", PORT_B)):
    ledger.transfer(faucet, provider.wallet, required_collateral(model, 1), kind=TxKind.FAUCET)
    node, token = register_node(provider, NodeSpec(name=name, gpu_model=model, gpu_count=1, vcpu=2, ram_gb=1,
        region=Region.objects.get(code="eu-west"), bandwidth_mbps=1000, price_per_gpu_hour=ath(1),
        endpoint=f"http://127.0.0.1:{port}/health"))
    GpuNode.objects.filter(pk=node.pk).update(status="online", health_score=990_000)  # as consensus would
    out[name] = {"id": node.pk, "token": token}
renter = User.objects.create_user("ada", password="PASSWORD")
ledger.transfer(faucet, renter.wallet, ath(10_000), kind=TxKind.FAUCET)
print(json.dumps(out))
"""
NODE_DOWN = "from apps.core.models import GpuNode; GpuNode.objects.filter(pk=NODE).update(status='offline')"


def stopped_or_explain(agent, log_path, timeout: float = 15, grace: float = 60) -> None:
    """Wait for an agent told to stop. One still running after ``timeout``
    prints its threads' stacks (the agent does so on SIGUSR1) into its log;
    if it then stops within ``grace``, the test goes on and the stacks are
    reported as a warning (a slow stop to look into); if not, it fails with
    them."""
    try:
        agent.wait(timeout=timeout)
        return
    except subprocess.TimeoutExpired:
        agent.send_signal(signal.SIGUSR1)
    try:
        agent.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        agent.kill()
        pytest.fail(f"the agent did not stop within {timeout + grace:g} s; its log:\n" + log_path.read_text()[-8000:])
    warnings.warn(
        f"the agent took over {timeout:g} s to stop; its log, with its threads' stacks at {timeout:g} s:\n"
        + log_path.read_text()[-8000:],
        stacklevel=2,
    )


def agent_options() -> tuple:
    """A real engine, no GPUs to attach, quick passes and log tails."""
    return ("--engine", engine.engine_url(), "--gpus", "no", "--reconcile-every", "0.5", "--log-every", "1")


def network(server) -> tuple[dict, dict]:
    ports = {"e2e-engine-a": free_port(), "e2e-engine-b": free_port()}
    script = SETUP.replace("PASSWORD", PASSWORD).replace("FIRST_ID", str(engine.new_node_id()))
    script = script.replace("PORT_A", str(ports["e2e-engine-a"]))
    out = server.manage("shell", "-c", script.replace("PORT_B", str(ports["e2e-engine-b"]))).stdout
    nodes = json.loads(out.strip().splitlines()[-1])
    return nodes, ports


def containers(node_id: int, lease: int) -> list:
    client = engine.client()
    try:
        # Sparse: one listing, no inspect of each container, which races a
        # removal under way (the engine answers 500 for one half gone).
        labels = [f"aethir.node={node_id}", f"aethir.lease={lease}"]
        return client.containers.list(all=True, sparse=True, filters={"label": labels})
    finally:
        client.close()


def remove_containers(made: list[tuple[int, int]]) -> None:
    """Whatever the test left on the engine, by the node and the lease it made."""
    for node_id, lease in made:
        for container in containers(node_id, lease):
            container.remove(force=True)


def gone_from_engine(node_id: int, lease: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while containers(node_id, lease):
        assert time.monotonic() < deadline, f"lease {lease}'s container still on the engine after {timeout:.0f}s"
        time.sleep(0.3)


def launch(page, url: str, node_id: int) -> int:
    """Rent ``node_id`` with the web-demo template through the rent form and
    its confirm step; returns the rental's id."""
    page.goto(f"{url}/marketplace/nodes/{node_id}/")
    page.get_by_label("What to run").select_option(label="Web page (busybox httpd)")
    page.get_by_label("Command").fill(COMMAND)
    page.get_by_test_id("rent-continue").click()
    review = page.locator(".confirm")
    expect(review).to_contain_text("localhost/aethir-web:1")
    expect(review).to_contain_text("Web page (busybox httpd)")
    expect(review).to_contain_text("echo hello from the workload")
    expect(review.locator("dd").nth(3)).to_have_text("8080")  # the template's port
    page.get_by_test_id("confirm-rent").click()
    expect(page).to_have_url(re.compile(r"/marketplace/rentals/\d+/$"))
    return int(re.search(r"/rentals/(\d+)/$", page.url).group(1))


def open_endpoint(page, port: int = 8080):
    """Click the endpoint (it opens in a new tab) and return that tab."""
    with page.context.expect_page() as opened:
        page.get_by_test_id(f"endpoint-{port}").click()
    site = opened.value
    expect(site.get_by_role("heading", name="Aethir workload")).to_be_visible()
    return site


def test_a_renter_launches_a_template_opens_it_watches_its_logs_and_ends_it(private_server, new_page, shot, tmp_path):
    server = private_server().start()
    nodes, ports = network(server)
    node = nodes["e2e-engine-a"]
    logs = [open(tmp_path / "agent.log", "w")]
    agents = [start_provider_agent(server, node["token"], ports["e2e-engine-a"], logs[0], agent_options())]
    made = []
    try:
        page = new_page()
        log_in(page, server.url, "ada", PASSWORD)
        page.goto(f"{server.url}/marketplace/nodes/{node['id']}/")
        shot(page, "workload-rent-form")
        started = time.monotonic()
        lease = launch(page, server.url, node["id"])
        made.append((node["id"], lease))
        expect(page.get_by_test_id("workload-state")).to_have_text("Running", timeout=15_000)
        assert time.monotonic() - started < 15
        wait_until_live(page)
        page.evaluate("window.openedOnce = true")  # gone if the page ever reloads
        expect(page.get_by_test_id("workload-verdict")).to_have_text("Running.")
        expect(page.get_by_test_id("workload-timeline")).to_contain_text("Running on e2e-engine-a")
        expect(page.get_by_test_id("workload-logs")).to_contain_text("hello from the workload")
        assert len(containers(node["id"], lease)) == 1

        # The endpoint serves the template's page; the request shows up in the
        # log tail, pushed over the page's WebSocket.
        site = open_endpoint(page)
        expect(site.locator("body")).to_contain_text("served by busybox httpd")
        shot(site, "workload-endpoint")
        expect(page.get_by_test_id("workload-logs")).to_contain_text("url:/", timeout=15_000)
        expect(page.get_by_test_id("workload-logs")).to_contain_text("response:200")
        assert page.evaluate("window.openedOnce") is True
        shot(page, "workload-running")

        page.get_by_test_id("end-rental").click()
        page.get_by_test_id("confirm-end").click()
        expect(page.get_by_test_id("rental-status")).to_have_text("Ended")
        gone_from_engine(node["id"], lease)
        page.reload()
        expect(page.get_by_test_id("workload-state")).to_have_text("Removed", timeout=10_000)
        expect(page.get_by_test_id("workload-verdict")).to_have_text("Stopped and removed from the node.")
        shot(page, "workload-removed")
        no_csp_errors(page)
    finally:
        stop_agents(agents, logs)
        remove_containers(made)


def test_a_failed_nodes_workload_moves_to_a_second_node_and_the_timeline_shows_the_move(
    private_server, new_page, shot, tmp_path
):
    server = private_server().start()
    nodes, ports = network(server)
    a, b = nodes["e2e-engine-a"], nodes["e2e-engine-b"]
    logs = [open(tmp_path / name, "w") for name in ("agent-a.log", "agent-b.log", "agent-a-again.log")]
    agents = [
        start_provider_agent(server, a["token"], ports["e2e-engine-a"], logs[0], agent_options()),
        start_provider_agent(server, b["token"], ports["e2e-engine-b"], logs[1], agent_options()),
    ]
    made = []
    try:
        page = new_page()
        log_in(page, server.url, "ada", PASSWORD)
        first = launch(page, server.url, a["id"])
        made.append((a["id"], first))
        expect(page.get_by_test_id("workload-state")).to_have_text("Running", timeout=15_000)

        # Node A's machine goes away (its agent stops; its container is left
        # as it was), and consensus marks the node offline.
        agents[0].send_signal(signal.SIGINT)
        stopped_or_explain(agents[0], tmp_path / "agent-a.log")
        server.manage("shell", "-c", NODE_DOWN.replace("NODE", str(a["id"])))
        page.reload()
        offer = page.locator("form.offer-mini").filter(has_text="e2e-engine-b")
        expect(offer).to_be_visible()
        shot(page, "workload-node-failed")
        offer.get_by_role("button", name="Move here").click()

        expect(page).to_have_url(re.compile(r"/marketplace/rentals/\d+/$"))
        second = int(re.search(r"/rentals/(\d+)/$", page.url).group(1))
        made.append((b["id"], second))
        assert second != first
        expect(page.locator("main")).to_contain_text(f"Replaces rental #{first}")
        # B's agent starts the same workload: Running on B, pushed to the open page.
        expect(page.get_by_test_id("workload-state")).to_have_text("Running", timeout=15_000)
        timeline = page.get_by_test_id("workload-timeline")
        expect(timeline).to_contain_text("Running on e2e-engine-a")
        expect(timeline).to_contain_text("on e2e-engine-b · Moved here from e2e-engine-a")
        expect(timeline).to_contain_text("Running on e2e-engine-b")
        expect(page.get_by_test_id("workload-logs")).to_contain_text("hello from the workload")
        site = open_endpoint(page)
        assert str(ports["e2e-engine-b"]) not in site.url  # the container's port, not the agent's
        assert len(containers(b["id"], second)) == 1

        # A's machine comes back: its agent removes the container of the lease
        # that moved away, and the timeline says so.
        wait_until_live(page)
        agents.append(start_provider_agent(server, a["token"], ports["e2e-engine-a"], logs[2], agent_options()))
        gone_from_engine(a["id"], first)
        expect(timeline).to_contain_text("Removed on e2e-engine-a", timeout=15_000)
        shot(page, "workload-moved")

        page.get_by_test_id("end-rental").click()
        page.get_by_test_id("confirm-end").click()
        expect(page.get_by_test_id("rental-status")).to_have_text("Ended")
        gone_from_engine(b["id"], second)
        no_csp_errors(page)
    finally:
        stop_agents([p for p in agents if p.poll() is None], logs)
        remove_containers(made)

"""A node's CUDA driver version and disk space: its agent reads them (NVML,
the file system) and sends them with its heartbeats and in its health
answer; the dashboard stores the ones it can read, ignores the others with
the reason in its answer (the samples still count), and the marketplace
shows them or says they were not reported."""

import asyncio
import shutil
import time

import aiohttp
import pytest
from rest_framework.test import APIClient

from apps.core import ledger, parameters
from apps.core.models import GpuNode
from apps.demo.simulator import FaultyProvider
from apps.monitoring.agents.provider import ProviderAgent
from apps.monitoring.agents.telemetry import GpuFacts, SyntheticGpus, cuda_version_text, host_facts
from apps.monitoring.models import Heartbeat

from ..factories import heartbeat_sample, make_node


def agent(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Agent {token}")
    return client


def test_nvml_driver_versions_read_as_renters_know_them():
    assert cuda_version_text(12040) == "12.4"
    assert cuda_version_text(11080) == "11.8"
    assert cuda_version_text(12090) == "12.9"


def test_an_agent_without_an_nvidia_driver_reports_its_disk_and_no_cuda(tmp_path):
    facts = host_facts(SyntheticGpus(GpuFacts("NVIDIA H100 80GB", 1, 80)), tmp_path)
    usage = shutil.disk_usage(tmp_path)
    assert facts["cuda_version"] is None
    assert facts["disk_total_gb"] == usage.total // 10**9
    assert 0 <= facts["disk_free_gb"] <= facts["disk_total_gb"]
    # A path that went away leaves the disk unreported rather than breaking the health answer.
    assert host_facts(None, tmp_path / "gone")["disk_total_gb"] is None


@pytest.mark.parametrize(("gpu", "count", "cuda"), [("NVIDIA H100 80GB", 8, "12.4"), ("NVIDIA T4 16GB", 1, "11.8")])
def test_simulated_nodes_report_plausible_facts_for_their_gpu(gpu, count, cuda):
    sim = FaultyProvider(api_url="http://127.0.0.1:1", token="t")
    sim.node_id = 7
    sim.facts = GpuFacts(gpu, count, 80)
    facts = sim.host_facts()
    assert facts["cuda_version"] == cuda
    assert 0 < facts["disk_free_gb"] < facts["disk_total_gb"]
    assert facts == sim.host_facts()  # steady: a node's disk does not jump between posts


def test_the_dashboard_stores_a_nodes_facts(genesis):
    node, token = make_node()
    body = {
        "samples": [heartbeat_sample()],
        "facts": {"cuda_version": "12.4", "disk_free_gb": 900, "disk_total_gb": 2000},
    }
    r = agent(token).post("/api/agent/heartbeats/", body, format="json")
    assert r.status_code == 201 and r.json() == {"stored": 1}
    node.refresh_from_db()
    assert (node.cuda_version, node.disk_free_gb, node.disk_total_gb) == ("12.4", 900, 2000)
    # No driver any more: the version is cleared, the disk kept as sent.
    body["facts"] = {"cuda_version": None, "disk_free_gb": 800, "disk_total_gb": 2000}
    assert agent(token).post("/api/agent/heartbeats/", body, format="json").status_code == 201
    node.refresh_from_db()
    assert (node.cuda_version, node.disk_free_gb) == ("", 800)


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ("12.4", "facts must be an object"),
        ({"cuda_version": "12.4; drop table", "disk_free_gb": 1, "disk_total_gb": 2}, "cuda_version"),
        ({"cuda_version": 12.4}, "cuda_version"),
        ({"cuda_version": "1" * 40}, "cuda_version"),
        ({"disk_free_gb": 10}, "come together"),
        ({"disk_free_gb": 10, "disk_total_gb": 5}, "disk_free_gb must be between 0 and 5"),
        ({"disk_free_gb": -1, "disk_total_gb": 5}, "disk_free_gb"),
        ({"disk_free_gb": 1, "disk_total_gb": 10**12}, "disk_total_gb"),
        ({"disk_free_gb": "lots", "disk_total_gb": 5}, "integer"),
        ({"disk_free_gb": True, "disk_total_gb": 5}, "integer"),
    ],
)
def test_facts_the_dashboard_cannot_read_are_ignored_with_the_reason_and_the_samples_kept(genesis, facts, message):
    node, token = make_node()
    GpuNode.objects.filter(pk=node.pk).update(cuda_version="12.2", disk_free_gb=100, disk_total_gb=500)
    r = agent(token).post("/api/agent/heartbeats/", {"samples": [heartbeat_sample()], "facts": facts}, format="json")
    assert r.status_code == 201 and r.json()["stored"] == 1
    assert message in r.json()["facts_ignored"]
    assert Heartbeat.objects.filter(node=node).count() == 1
    node.refresh_from_db()
    assert (node.cuda_version, node.disk_free_gb, node.disk_total_gb) == ("12.2", 100, 500)


@pytest.fixture
def network_ready(transactional_db):
    parameters.ensure_defaults()
    ledger.genesis()


def wait_for(check, timeout: float = 15.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_a_running_agent_reports_its_disk_to_the_dashboard_and_in_its_health_answer(
    network_ready, live_server, tmp_path
):
    node, token = make_node()
    total = shutil.disk_usage(tmp_path).total // 10**9

    async def run():
        provider = ProviderAgent(
            api_url=live_server.url,
            token=token,
            sample_every=0.2,
            post_every=0.5,
            allow_nvml=False,
            disk_path=str(tmp_path),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(provider.run(stop))
        try:
            await asyncio.to_thread(
                wait_for,
                lambda: GpuNode.objects.filter(pk=node.pk, disk_total_gb__isnull=False).exists(),
                what="the node's disk stored",
            )
            async with aiohttp.ClientSession() as session, session.get(provider.endpoint) as r:
                return await r.json()
        finally:
            stop.set()
            await task
            await provider.close()

    answer = asyncio.run(run())
    assert answer["disk_total_gb"] == total and answer["cuda_version"] is None
    node.refresh_from_db()
    assert node.disk_total_gb == total and node.cuda_version == ""
    assert node.disk_free_gb <= total

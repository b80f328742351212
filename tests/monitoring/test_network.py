"""The simulator's side of the network: which nodes it brings to life, and
what its checker agents report."""

from apps.core.models import AgentToken, GpuNode, NodeStatus
from apps.demo import simulated_network as network
from apps.monitoring.agents.checker import CheckerAgent, Tally

from ..factories import make_node


def test_nodes_registered_without_an_endpoint_are_adopted_once(genesis):
    blank, old_token = make_node(endpoint="")
    declared, _ = make_node(endpoint="http://203.0.113.7:9100/health")
    gone, _ = make_node(endpoint="")
    GpuNode.objects.filter(pk=gone.pk).update(status=NodeStatus.OFFLINE)
    known, _ = make_node(endpoint="")

    adopted = network.adopt_new_nodes(known={known.pk})

    assert [n.node_id for n in adopted] == [blank.pk]
    # The simulator acts for the node with a token of its own.
    assert adopted[0].token != old_token
    assert AgentToken.objects.get(node=blank).key_hash != ""
    assert network.adopt_new_nodes(known={known.pk, blank.pk}) == []
    network.set_endpoints({blank.pk: "http://127.0.0.1:40001/health"})
    assert network.adopt_new_nodes(known={known.pk}) == []  # it has an endpoint now


def test_the_reported_latency_is_the_fastest_probe():
    agent = CheckerAgent(api_url="http://127.0.0.1:1", token="agt_x")
    # A busy checker delays some probes; only the fastest shows the node's own latency.
    agent.tallies[(5, 1)] = Tally(probes=3, connected=3, answered=3, latencies=[480, 12, 35], spec_match=3)
    report = agent.build_report(5, 1)
    assert report["latency_ms"] == 12 and report["uptime_ppm"] == 1_000_000

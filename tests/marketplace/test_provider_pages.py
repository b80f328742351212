"""The provider's pages: the empty state states the hardware floor in
numbers, a node awaiting its first consensus reads "pending" rather than a
0% health, and the node page listens to the node's live feed."""

from django.urls import reverse

from apps.core import parameters
from apps.core.models import GpuNode, NodeStatus

from ..factories import UserFactory, make_node


def test_the_empty_state_states_the_hardware_floor(client, genesis):
    client.force_login(UserFactory())
    body = client.get(reverse("marketplace:provider")).content.decode()
    floor = parameters.current()
    assert f"at least {floor['min_vram_gb']} GB of VRAM per GPU, {floor['min_bandwidth_mbps']} Mbps" in body
    assert "at least  GB" not in body


def test_a_pending_node_reads_pending_not_zero_health_and_its_page_is_live(client, genesis):
    node, _ = make_node(name="new-node")
    assert node.status == NodeStatus.PENDING
    client.force_login(node.provider)
    listing = client.get(reverse("marketplace:provider")).content.decode()
    cell = listing.split('data-testid="provider-node-health">')[1].split("</td>")[0]
    assert "pending" in cell and "0%" not in cell
    page = client.get(reverse("marketplace:provider-node", args=[node.pk])).content.decode()
    assert f'ws-connect="/ws/monitoring/nodes/{node.pk}/"' in page
    assert 'id="node-facts"' in page and 'id="node-reports"' in page and 'id="node-epochs"' in page
    public = client.get(reverse("monitoring:node", args=[node.pk])).content.decode()
    assert "pending" in public.split('data-testid="node-health">')[1].split("</div>")[0]

    GpuNode.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE, health_score=970_000)
    listing = client.get(reverse("marketplace:provider")).content.decode()
    assert "97%" in listing.split('data-testid="provider-node-health">')[1].split("</td>")[0]


def test_no_page_gives_a_pending_node_zero_health(client, genesis):
    node, _ = make_node(name="new-node")
    assert node.status == NodeStatus.PENDING and node.health_score == 0

    def cell(body, testid):
        return body.split(f'data-testid="{testid}"')[1].split("</")[0]

    # (The catalogue lists online and degraded nodes only.)
    pages = {
        "node-health": client.get(reverse("marketplace:node", args=[node.pk])),
        "node-row-health": client.get(reverse("monitoring:nodes")),
    }
    for testid, response in pages.items():
        body = response.content.decode()
        assert "pending" in cell(body, testid) and "0%" not in cell(body, testid), testid

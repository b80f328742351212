"""A provider sees the capacity rewards their nodes earned (the settlement's
provider reward lines) on the dashboard, the node page and the API; and in
demo mode may leave a node's agent to the network simulator."""

from django.urls import reverse

from apps.core.amounts import ath
from apps.core.models import GpuModel, GpuNode, Region
from apps.settlement.models import LineKind, SettlementLine

from ..factories import fund, make_node


def reward(node, epoch, amount):
    SettlementLine.objects.create(
        epoch=epoch,
        kind=LineKind.PROVIDER_REWARD,
        account=node.provider.wallet,
        node=node,
        amount=amount,
        reason=f"{node.name}: weight 4 x uptime 100.00%",
    )


def test_capacity_rewards_show_per_node_per_epoch_and_in_total(client, clock, node, other_user):
    reward(node, 8, ath(3))
    reward(node, 9, 1_500_000)
    theirs, _ = make_node(provider=other_user, name="not-mine")
    reward(theirs, 9, ath(100))

    client.force_login(node.provider)
    body = client.get(reverse("marketplace:provider")).content.decode()
    assert 'data-testid="rewards-total">4.5 ATH<' in body
    assert 'data-testid="node-rewards">4.5 ATH<' in body
    assert "100 ATH" not in body
    body = client.get(reverse("marketplace:provider-node", args=[node.pk])).content.decode()
    assert 'data-testid="node-rewards-total">4.5 ATH<' in body
    assert "fra-h100: weight 4 x uptime 100.00%" in body

    client.force_login(node.provider)
    data = client.get("/api/marketplace/provider/earnings/").json()
    assert data["totals"]["rewards"] == "4500000"
    assert [(e["epoch"], e["capacity_rewards"], e["earned"]) for e in data["per_epoch"]] == [
        (8, "3000000", "0"),
        (9, "1500000", "0"),
    ]


def _register(client, user, endpoint):
    fund(user.wallet, ath(3_000))
    client.force_login(user)
    return client.post(
        reverse("marketplace:provider-new"),
        {
            "name": "my-l40s",
            "gpu_model": GpuModel.objects.get(slug="l40s").pk,
            "gpu_count": "1",
            "vcpu": "16",
            "ram_gb": "64",
            "region": Region.objects.get(code="eu-west").pk,
            "bandwidth_mbps": "1000",
            "price": "1",
            "sla_tier": "standard",
            "endpoint": endpoint,
        },
        follow=True,
    )


def test_in_the_demo_a_node_may_leave_its_agent_to_the_simulator(client, user, settings):
    settings.DEMO_MODE = True
    r = _register(client, user, "")
    body = r.content.decode()
    assert r.status_code == 200 and "The demo runs its agent" in body and "run_provider_agent" not in body
    assert GpuNode.objects.get(name="my-l40s").endpoint == ""


def test_outside_the_demo_a_node_needs_an_endpoint(client, user, settings):
    settings.DEMO_MODE = False
    r = _register(client, user, "")
    assert r.status_code == 400 and "This field is required." in r.content.decode()
    assert not GpuNode.objects.filter(name="my-l40s").exists()

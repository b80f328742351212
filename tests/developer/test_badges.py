"""Public uptime badges for nodes and checkers: SVG, cacheable, no log-in."""

from django.core.cache import cache

from apps.core.models import GpuNode, NodeStatus
from apps.monitoring.models import CheckerEpoch, NodeEpoch

from ..factories import make_checker, make_node


def test_a_node_badge_shows_its_30_day_uptime_and_status(client, genesis):
    node, _ = make_node()
    GpuNode.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)
    for epoch, uptime in ((1, 990_000), (2, 970_000)):
        NodeEpoch.objects.create(node=node, epoch=epoch, assigned=3, reports=3, valid=True, uptime_ppm=uptime)
    NodeEpoch.objects.create(node=node, epoch=3, assigned=3, reports=1, valid=False)  # no quorum: not counted
    response = client.get(f"/developer/badges/nodes/{node.pk}.svg")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    assert "public" in response["Cache-Control"] and "max-age" in response["Cache-Control"]
    svg = response.content.decode()
    assert svg.startswith("<svg") and "98.00% · online" in svg


def test_a_checker_badge_counts_rounds_delivered(client, genesis):
    checker, _ = make_checker()
    CheckerEpoch.objects.create(checker=checker, epoch=1, assigned=10, delivered=9)
    CheckerEpoch.objects.create(checker=checker, epoch=2, assigned=10, delivered=10)
    svg = client.get(f"/developer/badges/checkers/{checker.pk}.svg").content.decode()
    assert "95.00% · active" in svg


def test_badges_for_unknown_or_new_things(client, genesis):
    assert client.get("/developer/badges/nodes/999999.svg").status_code == 404
    node, _ = make_node(name='<script>"x"</script>')
    svg = client.get(f"/developer/badges/nodes/{node.pk}.svg").content.decode()
    assert "no data · pending" in svg and "<script>" not in svg
    cache.clear()

"""Catalogue cards give distinct numbers to choose with: throughput (FP32
TFLOPS for the node) and what an ATH an hour buys of it, and reliability:
the share of the node's epochs over 30 days with consensus at or above the
SLA uptime target (an epoch without consensus counts as missed)."""

from django.urls import reverse

from apps.marketplace import catalogue
from apps.monitoring.models import NodeEpoch

from .conftest import consensus


def test_cards_show_tflops_per_ath_and_reliability(client, clock, node):
    for e in range(1, 10):
        consensus(node, e)

    NodeEpoch.objects.filter(node=node, epoch=4).update(uptime_ppm=900_000)  # below the 99% target
    NodeEpoch.objects.filter(node=node, epoch=5).update(valid=False)  # no consensus: missed
    got = catalogue.reliability([node.pk])[node.pk]
    assert got["epochs"] == 9 and got["ppm"] == 7 * 1_000_000 // 9

    body = client.get(reverse("marketplace:index")).content.decode()
    # 1x H100: 67 TFLOPS at 2 ATH an hour = 33.5 TFLOPS per ATH/h.
    assert "<strong>67</strong> TFLOPS FP32 · <strong>33.5</strong> TFLOPS per ATH/h" in body
    assert "77.77% reliable · 1 d" in body

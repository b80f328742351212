"""The node's measured download speed on the marketplace's cards and node
page, and on its monitoring page: "not measured yet" until a checker
consensus gives a figure, then the median the checkers measured, beside
the bandwidth the provider declared."""

from django.urls import reverse

from apps.monitoring import assignment, consensus
from apps.monitoring.models import CheckerReport

from ..factories import make_checker

PPM = 1_000_000


def card(body: str, name: str) -> str:
    [found] = [c for c in body.split('data-testid="offer"')[1:] if name in c]
    return found


def finalize_with_speeds(node, epoch: int, speeds) -> None:
    checkers = [make_checker()[0] for _ in speeds]
    assignment.fix_round(epoch)
    for checker, mbps in zip(checkers, speeds, strict=True):
        CheckerReport.objects.create(
            epoch=epoch,
            node=node,
            checker=checker,
            payload_hash="x",
            signature="y",
            probes=10,
            uptime_ppm=PPM,
            task_ppm=PPM,
            latency_ms=20,
            spec_ok=True,
            gpu_name_seen=node.gpu_model.name,
            gpu_count_seen=node.gpu_count,
            download_mbps=mbps,
        )
    assert consensus.finalize(epoch) is not None


def test_the_card_says_not_measured_yet_then_shows_the_consensus_figure(client, clock, node):
    declared = f"{node.bandwidth_mbps} Mbps"
    body = client.get(reverse("marketplace:index")).content.decode()
    assert declared in card(body, node.name) and "not measured yet" in card(body, node.name)
    page = client.get(reverse("marketplace:node", args=[node.pk])).content.decode()
    assert f"{declared} declared · " in page and "not measured yet" in page

    finalize_with_speeds(node, clock.epoch - 1, [940, 610, 880])

    body = client.get(reverse("marketplace:index")).content.decode()
    offer = card(body, node.name)
    assert declared in offer and "measured 880 Mbps" in offer and "not measured yet" not in offer
    page = client.get(reverse("marketplace:node", args=[node.pk])).content.decode()
    assert f"{declared} declared · " in page and "measured 880 Mbps" in page
    assert f"median of their reports in epoch {clock.epoch - 1}" in page
    facts = client.get(reverse("monitoring:node", args=[node.pk])).content.decode()
    assert "measured 880 Mbps" in facts


def test_the_card_reads_in_indonesian(client, clock, node):
    finalize_with_speeds(node, clock.epoch - 1, [940, 610, 880])
    body = client.get(reverse("marketplace:index"), headers={"Accept-Language": "id"}).content.decode()
    assert "terukur 880 Mbps" in card(body, node.name)

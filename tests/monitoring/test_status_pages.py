"""Status pages per node and per checker: 90 bars, incidents grouped into
runs with their evidence and duration, network incidents of the span."""

import pytest
from django.urls import reverse

from apps.core.models import ParameterChange
from apps.monitoring import status
from apps.monitoring.models import CheckerEpoch, NodeEpoch
from apps.settlement.models import NetworkIncident
from apps.staking import services as staking

from ..factories import make_checker, make_node


@pytest.fixture
def hourly_now(genesis, monkeypatch):
    ParameterChange.objects.filter(key="epoch_seconds").update(value=3_600)
    monkeypatch.setattr(status.epochs, "current_number", lambda: 200)


def _epoch(node, e, *, uptime=1_000_000, valid=True, challenge=None):
    NodeEpoch.objects.create(
        node=node,
        epoch=e,
        assigned=3,
        reports=3 if valid else 1,
        valid=valid,
        uptime_ppm=uptime if valid else None,
        challenge_ok=challenge,
    )


def test_a_node_status_page_shows_bars_incidents_and_network_incidents(client, hourly_now):
    node, _ = make_node(name="fra-1")
    for e in range(150, 201):
        _epoch(node, e)
    NodeEpoch.objects.filter(node=node, epoch__in=[170, 171, 172]).update(uptime_ppm=600_000)
    NodeEpoch.objects.filter(node=node, epoch=180).update(valid=False, uptime_ppm=None, reports=1)
    NodeEpoch.objects.filter(node=node, epoch=190).update(challenge_ok=False)
    NetworkIncident.objects.create(epoch=180, summary="half the round had no consensus")

    data = status.node_status(node, "hour")
    assert len(data["bars"]) == 90 and data["per"] == 1
    assert data["bars"][-1].last_epoch == 200 and data["bars"][-1].level == "ok"
    assert data["bars"][0].level == "none"  # before the node's first epoch: no data, not 0%
    down = [i for i in data["incidents"] if i.kind == "down"]
    assert len(down) == 1 and (down[0].first_epoch, down[0].last_epoch, down[0].seconds) == (170, 172, 3 * 3_600)
    assert down[0].duration_text == "3 h 0 min" and "uptime 60.00%" in down[0].evidence[0]
    assert {i.kind for i in data["incidents"]} == {"down", "no-consensus", "challenge"}
    assert data["has_challenges"]
    assert [n.epoch for n in data["network_incidents"]] == [180]

    body = client.get(reverse("monitoring:node-status", args=[node.pk]) + "?unit=hour").content.decode()
    assert body.count('data-testid="status-bar"') == 90
    assert "Below the SLA uptime target by consensus" in body and "lasted 3 h 0 min" in body
    assert "half the round had no consensus" in body
    page = client.get(reverse("monitoring:node", args=[node.pk])).content.decode()
    assert reverse("monitoring:node-status", args=[node.pk]) in page


def test_day_bars_span_a_day_of_epochs_each(hourly_now):
    node, _ = make_node(name="fra-2")
    _epoch(node, 200)
    data = status.node_status(node, "day")
    assert data["per"] == 24 and data["bars"][-1].first_epoch == 177 and data["bars"][-1].epochs == 1


def test_a_checker_status_page_shows_delivery_and_its_jail(client, hourly_now):
    checker, _ = make_checker(name="watcher")
    for e in range(190, 201):
        CheckerEpoch.objects.create(checker=checker, epoch=e, assigned=10, delivered=10, correct=10)
    CheckerEpoch.objects.filter(checker=checker, epoch=195).update(delivered=2, correct=2)
    staking.jail(checker, "missed assignments", epoch=196, duration=4)
    data = status.checker_status(checker, "hour")
    bar = next(b for b in data["bars"] if b.first_epoch == 195)
    assert bar.primary_ppm == 200_000 and bar.level == "bad"
    assert [i.kind for i in data["incidents"]] == ["jail"]
    body = client.get(reverse("monitoring:checker-status", args=[checker.pk]) + "?unit=hour").content.decode()
    assert "missed assignments" in body and body.count('data-testid="status-bar"') == 90

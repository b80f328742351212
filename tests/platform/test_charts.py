"""Charts whose x axis is an epoch number tick on whole epochs only: the
figure data each page embeds carries the axis (integer format, a whole
number of epochs between ticks, few enough ticks for a long history)."""

import json
import re

import pytest
from django.urls import reverse

from apps.monitoring.models import CheckerEpoch, NodeEpoch
from apps.platform.charts import MAX_EPOCH_TICKS, epoch_axis, epoch_step
from apps.settlement.models import EpochSettlement

from ..factories import make_checker, make_node


def embedded(page: str, script_id: str) -> dict:
    match = re.search(rf'<script id="{script_id}" type="application/json">(.*?)</script>', page, re.S)
    assert match, f"no {script_id} data on the page"
    return json.loads(match.group(1))


def assert_whole_epochs(axis: dict) -> None:
    assert axis["tickformat"] == "d" and axis["tickmode"] == "linear"
    assert isinstance(axis["dtick"], int) and axis["dtick"] >= 1 and axis["tick0"] == 0
    assert axis["title"] == {"text": "epoch"}


@pytest.mark.parametrize(
    "span, step",
    [(0, 1), (1, 1), (9, 1), (10, 2), (19, 2), (20, 5), (49, 5), (50, 10), (99, 10), (100, 20), (5_000, 1_000)],
)
def test_tick_spacing_is_a_whole_nice_number_of_epochs(span, step):
    assert epoch_step(span) == step
    assert span // step < MAX_EPOCH_TICKS


def test_two_epochs_tick_on_each_epoch_and_sixty_on_every_tenth():
    assert epoch_axis([9, 10])["dtick"] == 1  # not 9.2, 9.4, ...
    assert epoch_axis(list(range(100, 160)))["dtick"] == 10
    assert epoch_axis(list(range(100, 130)))["dtick"] == 5
    assert epoch_axis([])["dtick"] == 1


def test_node_page_epoch_axis(client, genesis):
    node, _ = make_node()
    for epoch in (9, 10):
        NodeEpoch.objects.create(node=node, epoch=epoch, valid=True, uptime_ppm=1_000_000, health_score=900_000)
    series = embedded(client.get(reverse("monitoring:node", args=[node.pk])).content.decode(), "node-series")
    assert series["epochs"] == [9, 10]
    assert_whole_epochs(series["epoch_axis"])
    assert series["epoch_axis"]["dtick"] == 1
    # The marketplace's page for the same node embeds the same series.
    series = embedded(client.get(reverse("marketplace:node", args=[node.pk])).content.decode(), "node-series")
    assert_whole_epochs(series["epoch_axis"])


def test_checker_page_epoch_axis(client, genesis):
    checker, _ = make_checker()
    for epoch in range(60):
        CheckerEpoch.objects.create(checker=checker, epoch=epoch, assigned=3, delivered=3, correct=3)
    history = embedded(client.get(reverse("monitoring:checker", args=[checker.pk])).content.decode(), "checker-history")
    assert_whole_epochs(history["epoch_axis"])
    assert history["epoch_axis"]["dtick"] == 10  # 59 epochs: a tick every 10th, not 60 ticks


def test_settlement_page_epoch_axis(client, genesis):
    for epoch in (3, 4):
        EpochSettlement.objects.create(epoch=epoch)
    charts = embedded(client.get(reverse("settlement:index")).content.decode(), "settlement-charts")
    assert charts["epochs"] == [3, 4]
    assert_whole_epochs(charts["epoch_axis"])


def test_provider_dashboard_epoch_axis(client, genesis):
    node, _ = make_node()
    client.force_login(node.provider)
    earnings = embedded(client.get(reverse("marketplace:provider")).content.decode(), "provider-earnings")
    assert_whole_epochs(earnings["epoch_axis"])


def test_every_epoch_chart_in_the_script_uses_the_epoch_axis():
    from django.contrib.staticfiles import finders

    script = open(finders.find("js/charts.js"), encoding="utf-8").read()
    assert 'title: "epoch"' not in script
    charts_on_epochs = re.findall(r'"([\w-]+)": function \(d\) \{(?:(?!\n    \},).)*?x: d\.epochs', script, re.S)
    assert len(charts_on_epochs) == 6
    assert script.count("xaxis: epochAxis(d)") == len(charts_on_epochs)

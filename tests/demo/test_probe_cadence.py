"""The demo's checkers probe each node often enough that a report rests on
several probes, whatever the epoch length: with one or two, a single probe
that timed out on a busy host decided the report, and honest checkers were
jailed for it."""

import pytest

from apps.demo.management.commands.run_demo import PROBES_PER_REPORT, cadence
from apps.monitoring.agents.checker import probe_instant, report_margin

START = 1_800_000_000.0


@pytest.mark.parametrize("epoch_seconds", [10, 20, 30, 60, 120, 600, 3600])
def test_every_node_gets_several_probes_before_its_checkers_report(epoch_seconds):
    probe_every, post_every = cadence(epoch_seconds)
    last = START + epoch_seconds - report_margin(probe_every, epoch_seconds)
    # A checker picks up the epoch's assignments up to half an interval in
    # (its staggered start) and a little more while the round is fixed: it
    # probes from the first instant after that.
    arrives = START + probe_every / 2 + 2
    counts = []
    for node in range(500):
        k, n = 0, 0
        while (at := probe_instant(START, 9, node, k, probe_every)) < last:
            n += at >= arrives
            k += 1
        counts.append(n)
    # Ten-second epochs (the shortest allowed) hit the 2 s floor of the interval.
    want = PROBES_PER_REPORT if epoch_seconds >= 20 else 1
    assert min(counts) >= want, (epoch_seconds, probe_every, min(counts))
    # Telemetry at least twice an epoch (a node is seen in every epoch), at
    # the real agents' pace on long ones.
    assert 2 * post_every <= epoch_seconds or post_every == 5
    assert probe_every <= 15 and post_every <= 30


def test_one_minute_epochs_are_probed_about_every_six_seconds():
    # The demo's default: 6 or 7 probes per report, about 300 probes a second
    # for 1,000 nodes with 3 checkers each (15 s gave 1 or 2 per report).
    assert cadence(60) == (6, 30)

"""Checkers of a node probe it at the same moments, so a node that goes down
or comes back during an epoch looks the same to all of them; different nodes
are probed at different moments, so a checker's probes don't come in bursts."""

import asyncio
from unittest import mock

import pytest

from apps.monitoring.agents import checker as checker_module
from apps.monitoring.agents.checker import CheckerAgent, probe_instant

START = 1_800_000_000.0
EVERY = 15.0


def test_probe_instants_are_common_to_a_nodes_checkers_and_spread_over_the_interval():
    for k in range(3):
        assert probe_instant(START, 12, 7, k, EVERY) == probe_instant(START, 12, 7, k, EVERY)
        assert probe_instant(START, 12, 7, k, EVERY) - probe_instant(START, 12, 7, 0, EVERY) == pytest.approx(k * EVERY)
    firsts = [probe_instant(START, 12, node, 0, EVERY) - START for node in range(1000)]
    # Within the first interval after half a one (time to fetch assignments).
    assert all(EVERY / 2 <= f < EVERY * 1.5 for f in firsts)
    # Spread: every tenth of the interval gets its share of the nodes.
    buckets = [0] * 10
    for f in firsts:
        buckets[int((f - EVERY / 2) / EVERY * 10)] += 1
    assert min(buckets) > 60 and max(buckets) < 140
    # A node's moments move from epoch to epoch.
    assert probe_instant(START, 13, 7, 0, EVERY) != probe_instant(START, 12, 7, 0, EVERY)


def _on_a_fake_clock(start: float, rounds):
    """Run ``rounds(agent, now)`` (a coroutine function) on a clock that
    starts at ``start`` and moves only when the agent sleeps; returns the
    moments the agent probed, and the agent. Probes are recorded, not sent."""
    now = [start]
    probed = []

    async def sleep(seconds):
        now[0] += max(0.0, seconds)

    async def probe(epoch, a, sem):
        probed.append(now[0])

    agent = CheckerAgent(api_url="http://x", token="agt_x", key=object(), probe_every=EVERY)
    agent.probe = probe
    with (
        mock.patch.object(checker_module.time, "time", lambda: now[0]),
        mock.patch.object(checker_module.asyncio, "sleep", sleep),
    ):
        asyncio.run(rounds(agent, now))
    return probed, agent


def _probed_at(agent_start: float, rounds: int):
    """The moments an agent that starts at ``agent_start`` (and runs its
    rounds back to back) probes node 7 in epoch 12."""
    a = {"node": 7, "endpoint": "http://127.0.0.1:9/health"}

    async def run(agent, now):
        for _ in range(rounds):
            round_start = now[0]
            await agent._probe_later(12, a, asyncio.Semaphore(1), START, min(START + 40, round_start + EVERY))
            now[0] = round_start + EVERY + 0.05  # the next round, a little late

    return _on_a_fake_clock(agent_start, run)[0]


def test_two_checkers_of_a_node_probe_it_at_the_same_moments_whatever_their_own_phase():
    one, other = _probed_at(START + 0.2, 4), _probed_at(START + 6.9, 4)
    expected = [
        probe_instant(START, 12, 7, k, EVERY) for k in range(3) if probe_instant(START, 12, 7, k, EVERY) < START + 40
    ]
    assert one == other == expected


def test_a_round_that_starts_late_takes_every_instant_it_covers():
    # A busy host: the agent's only round of the epoch starts when the
    # node's first instant has passed and covers the rest of the epoch's
    # instants. It takes all of them (the late one at once), so its report
    # rests on as many probes as its peers', not on one.
    until = probe_instant(START, 12, 7, 2, EVERY)

    async def one_late_round(agent, now):
        agent.tallies[(12, 7)] = checker_module.Tally(next_k=0)  # the epoch's first round found it due
        await agent._probe_later(12, {"node": 7}, asyncio.Semaphore(1), START, until)

    probed, agent = _on_a_fake_clock(probe_instant(START, 12, 7, 0, EVERY) + 1.0, one_late_round)
    assert probed == [probe_instant(START, 12, 7, 0, EVERY) + 1.0, probe_instant(START, 12, 7, 1, EVERY)]
    assert agent.tallies[(12, 7)].sampled == 2

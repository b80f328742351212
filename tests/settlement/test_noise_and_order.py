"""A network that survives ordinary noise (docs/rules.md §3, §5, §6, §7):
misreports judged by rate, network incidents, self-contradicting reports,
and the epoch order (rounds fixed before settlements act on them)."""

from datetime import timedelta
from fractions import Fraction

import pytest
from django.db.models import F
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.core import epochs, ledger, parameters
from apps.core.amounts import ath
from apps.core.models import ChainHead, CheckerStatus, ModuleAccount, NodeStatus
from apps.core.verify import verify_ledger
from apps.monitoring import assignment
from apps.monitoring.models import AssignmentRound, CheckerEpoch
from apps.settlement import penalties, scheduler, services
from apps.settlement.models import LineKind, NetworkIncident, SettlementLine
from apps.staking import queries as staking_queries
from apps.staking import services as staking
from apps.staking.models import RewardPeriod

from ..factories import UserFactory, fund, make_node
from .conftest import report, set_epoch

P = {key: parameters.default(key) for key in parameters.DEFINITIONS}


# --- the rule: a share of judged reports and a minimum count -------------------


def _window(checker, rows):
    for epoch, correct, incorrect in rows:
        CheckerEpoch.objects.create(
            epoch=epoch,
            checker=checker,
            assigned=correct + incorrect,
            delivered=correct + incorrect,
            correct=correct,
            incorrect=incorrect,
        )


@pytest.mark.parametrize(
    "correct,incorrect,jailed",
    [
        (189, 10, True),  # 10 of 199 = 5.03%: over 5% and at the minimum
        (190, 10, False),  # 10 of 200 = exactly 5%: not over the share
        (11, 9, False),  # 45% wrong, but 9 is under the minimum of 10
        (750, 21, False),  # the demo's busy checker: 21 of 771 = 2.7%
        (0, 10, True),
    ],
)
def test_misreports_jail_by_share_and_minimum(small_network, correct, incorrect, jailed):
    checker = small_network["checkers"][0]
    _window(checker, [(6, correct, incorrect)])
    found = penalties.misreports_by_rate(6, parameters.current(6), set())
    assert [m.checker_id for m in found] == ([checker.pk] if jailed else [])


@settings(max_examples=300, deadline=None)
@given(
    incorrect=st.integers(0, 2_000),
    correct=st.integers(0, 20_000),
    share=st.integers(1_000, 500_000),
    minimum=st.integers(1, 1_000),
    expected=st.fractions(min_value=0, max_value=5_000, max_denominator=10**6),
)
def test_rate_rule_matches_its_definition(incorrect, correct, share, minimum, expected):
    """Jailed iff incorrect > share x judged, exactly (no rounding), incorrect
    >= the minimum, and at least twice what the network's rates give."""
    p = {**P, "misreport_jail_share": share, "misreport_jail_min": minimum}
    judged = incorrect + correct
    want = (
        incorrect >= minimum
        and judged > 0
        and Fraction(incorrect, judged) > Fraction(share, 1_000_000)
        and incorrect >= 2 * expected
    )
    assert penalties.rate_exceeded(incorrect, judged, p, expected) == want


@settings(max_examples=200, deadline=None)
@given(
    rows=st.dictionaries(
        st.integers(0, 20),
        st.tuples(st.integers(0, 500), st.integers(0, 400), st.integers(0, 5_000)),
        max_size=8,
    )
)
def test_expected_errors_are_the_others_rate_epoch_by_epoch(rows):
    """The bar is the sum over epochs of (the checker's judged reports x the
    others' rate that epoch), exactly; an epoch where nobody else was judged
    adds nothing."""
    mine = {e: judged for e, (judged, _, _) in rows.items()}
    network = {e: (min(inc, judged), judged) for e, (_, inc, judged) in rows.items()}
    want = sum((Fraction(mine[e] * i, j) for e, (i, j) in network.items() if j), Fraction(0))
    assert penalties.expected_incorrect(mine, network) == want


def test_a_noisy_network_raises_the_bar_but_not_for_a_liar(small_network):
    """Every checker is 6% wrong on a loaded host: over 5%, but no worse than
    the network, so nobody is jailed; one checker 40% wrong still is."""
    c0, c1, c2 = small_network["checkers"]
    _window(c0, [(6, 188, 12)])
    _window(c1, [(6, 188, 12)])
    _window(c2, [(6, 120, 80)])
    found = penalties.misreports_by_rate(6, parameters.current(6), set())
    assert [m.checker_id for m in found] == [c2.pk]
    assert found[0].network == {6: (24, 400)}
    assert found[0].expected == Fraction(200 * 24, 400)


def test_a_latency_spike_in_one_epoch_jails_nobody_who_was_no_worse_than_the_others_in_it(small_network):
    """Epoch 5 is quiet; in epoch 6 a loaded host makes 10% of everyone's
    reports wrong. The first checker filed most of its reports in the spike
    and was as wrong as the rest there: 14 of 250 in the window (5.6%, over
    the share), three times the others' rate pooled over the window, but no
    worse than theirs epoch by epoch, so it is not jailed. A checker wrong
    on 40% in the quiet epoch as well still is."""
    c0, c1, c2 = small_network["checkers"]
    _window(c0, [(5, 100, 0), (6, 136, 14)])
    _window(c1, [(5, 1_500, 0), (6, 180, 20)])
    _window(c2, [(5, 1_500, 0), (6, 180, 20)])
    p = parameters.current(6)
    # Pooled, the others were wrong on 40 of 3,400 (1.2%): 5.6% is more than twice that.
    assert penalties.rate_exceeded(14, 250, p, Fraction(250 * 40, 3_400))
    assert penalties.misreports_by_rate(6, p, set()) == []

    CheckerEpoch.objects.filter(checker=c2, epoch=5).update(correct=900, incorrect=600)
    found = penalties.misreports_by_rate(6, parameters.current(6), set())
    assert [m.checker_id for m in found] == [c2.pk]
    # The others: epoch 5 nobody wrong of 1,600; epoch 6 34 of 350.
    assert found[0].network == {5: (0, 1_600), 6: (34, 350)}
    assert found[0].expected == Fraction(200 * 34, 350)


def test_the_epochs_latency_noise_is_the_spread_nine_nodes_in_ten_stay_within():
    from apps.monitoring import consensus

    quiet = [[2, 3, 2], [5, 4, 6], [1, 1]]
    assert consensus.latency_noise_ms(quiet) == consensus.LATENCY_NOISE_MS
    # A loaded host: stalls add hundreds of ms to some readings; one lying
    # checker's wild values on one node do not set the bar.
    loaded = [[5, 300, 12], [4, 250, 260], [3, 6, 230], [2, 1900, 3], [8, 9, 210]]
    assert consensus.latency_noise_ms(loaded) == 295
    # Stalls in bursts: a third of the nodes have one stalled reading, the
    # median node none. The bar is the stalls', not the quiet nodes'.
    bursty = [[2, 3, 2]] * 60 + [[3, 2, 180 + i] for i in range(30)] + [[2, 2, 1500]] * 5
    assert consensus.latency_noise_ms(bursty) == 202
    # Judged against that floor, a clean 5 ms reading is not "incorrect"
    # next to a consensus inflated to 250 ms; a 900 ms lie still is.
    v = consensus.Verdict(reports=3, valid=True, uptime_ppm=1_000_000, task_ppm=1_000_000, latency_ms=250, spec_ok=True)
    report = {"uptime_ppm": 1_000_000, "task_ppm": 1_000_000, "spec_ok": True}
    assert consensus.is_correct({**report, "latency_ms": 5}, v, 50_000, 300_000, noise_ms=295)
    assert not consensus.is_correct({**report, "latency_ms": 5}, v, 50_000, 300_000)
    assert not consensus.is_correct({**report, "latency_ms": 900}, v, 50_000, 300_000, noise_ms=295)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"misreport_jail_share": 999}, "between 0.1% and 50%"),
        ({"misreport_jail_share": 500_001}, "between 0.1% and 50%"),
        ({"misreport_jail_min": 0}, "between 1 and 1,000"),
        ({"misreport_jail_min": 1_001}, "between 1 and 1,000"),
        ({"incident_share": 99_999}, "between 10% and 100%"),
    ],
)
def test_new_parameters_keep_their_bounds(genesis, changes, message):
    with pytest.raises(parameters.ParameterError, match=message):
        parameters.validate(changes)


def test_new_parameters_have_history(genesis):
    parameters.ensure_defaults()
    parameters.apply({"misreport_jail_min": 25}, effective_epoch=9, source="test")
    assert (parameters.get("misreport_jail_min", 8), parameters.get("misreport_jail_min", 9)) == (10, 25)
    assert parameters.get("misreport_jail_share", 0) == 50_000
    assert parameters.get("incident_share", 0) == 333_334


# --- incidents -----------------------------------------------------------------


def _noisy_epoch(small_network):
    """Epoch 6: checker-1 is far off on A's uptime and checker-2 on B's
    (probes timing out on a busy host): two of three checkers would be
    jailed with a minimum of 1."""
    parameters.apply({"misreport_jail_min": 1}, effective_epoch=0, source="test")
    a, b, c = small_network["nodes"]
    c0, c1, c2 = small_network["checkers"]
    for checker in (c0, c1, c2):
        report(6, a, checker, **({"uptime_ppm": 500_000} if checker == c1 else {}))
        report(6, b, checker, **({"uptime_ppm": 400_000} if checker == c2 else {}))
        report(6, c, checker)


def test_an_incident_epoch_slashes_and_jails_nobody_and_is_shown(small_network, client):
    _noisy_epoch(small_network)
    stakes = {c.pk: c.total_stake for c in small_network["checkers"]}
    set_epoch(7)
    result = services.settle(6)

    assert result.incident and (result.jailed, result.stake_slashed) == (0, 0)
    for checker in small_network["checkers"]:
        checker.refresh_from_db()
        assert checker.status == CheckerStatus.ACTIVE and checker.total_stake == stakes[checker.pk]
    incident = NetworkIncident.objects.get(epoch=6)
    assert (incident.checkers_active, incident.checkers_would_be_jailed) == (3, 2)
    uptime = incident.evidence["disagreements"]["uptime_ppm"]
    assert (uptime["reports"], uptime["max"]) == (2, 600_000)
    # What consensus still supported was paid: every node and checker.
    assert (result.nodes_paid, result.checkers_paid) == (3, 3)
    line = SettlementLine.objects.get(epoch=6, kind=LineKind.NETWORK_INCIDENT)
    assert "2 of 3 checkers would have been jailed" in line.reason
    # Shown on the settlement page and on the network status page.
    assert "Network incident" in client.get("/settlement/").content.decode()
    assert "Network incident" in client.get("/settlement/epoch/6/").content.decode()
    assert "Network incident" in client.get("/monitoring/").content.decode()
    # And in the public API, with its evidence.
    body = client.get("/api/settlement/incidents/").json()
    first = body["results"][0] if "results" in body else body[0]
    assert (first["epoch"], first["checkers_would_be_jailed"]) == (6, 2)
    assert client.get("/api/settlement/epochs/6/").json()["incident"] is True
    assert verify_ledger().ok


def test_incident_epochs_count_towards_no_later_window(small_network):
    _noisy_epoch(small_network)
    set_epoch(7)
    services.settle(6)
    a, b, c = small_network["nodes"]
    for checker in small_network["checkers"]:
        for node in (a, b, c):
            report(7, node, checker)
    assignment.fix_round(7)
    set_epoch(8)
    result = services.settle(7)
    assert not result.incident and result.jailed == 0


def test_a_lying_checker_is_jailed_even_in_an_incident(small_network):
    """Two of three nodes lose consensus (a partition: one report each), and
    checker-0 files a report that contradicts itself."""
    a, b, c = small_network["nodes"]
    c0, c1, c2 = small_network["checkers"]
    # Answers counted over connections it never opened: false on its face.
    report(6, a, c0, uptime_ppm=100_000, task_ppm=900_000)
    report(6, a, c1)
    report(6, a, c2)
    report(6, b, c1, uptime_ppm=500_000)
    report(6, c, c2, uptime_ppm=500_000)
    stake = c0.total_stake
    set_epoch(7)
    result = services.settle(6)
    assert result.incident
    c0.refresh_from_db()
    assert c0.status == CheckerStatus.JAILED
    assert c0.total_stake == stake - stake // 100
    slash = SettlementLine.objects.get(epoch=6, kind=LineKind.CHECKER_SLASH, checker=c0)
    assert "self-contradicting" in slash.reason
    # The honest checkers are not punished for the partition.
    assert result.jailed == 1
    assert NetworkIncident.objects.get(epoch=6).evidence["self_contradicting"] == 1
    assert verify_ledger().ok


def test_many_nodes_without_consensus_is_an_incident(small_network):
    a, b, c = small_network["nodes"]
    c0, c1, c2 = small_network["checkers"]
    for checker in (c0, c1, c2):
        report(6, a, checker)
    # B and C: one report each, under the quorum of two.
    report(6, b, c0)
    report(6, c, c1)
    set_epoch(7)
    result = services.settle(6)
    assert result.incident
    assert NetworkIncident.objects.get(epoch=6).evidence["trigger"] == ["consensus"]
    assert result.nodes_paid == 1


# --- the epoch order -----------------------------------------------------------


def test_first_epoch_after_genesis_pays_the_checker_share_in_full(genesis):
    """Checkers staked at genesis, before round 0 was fixed, back round 0:
    the whole checker share is paid (commission to operators, the rest to
    the stake), and the reserve keeps nothing of it."""
    parameters.apply({"emission_per_epoch": ath(1_000)}, effective_epoch=0, source="test")
    set_epoch(0)
    nodes = [make_node(name=f"n{i}")[0] for i in range(2)]
    checkers = []
    for i in range(3):
        operator = UserFactory(username=f"gen-op{i}")
        fund(operator.wallet, ath(10_000))
        checkers.append(staking.activate_checker(operator, f"gen-{i}", ath(10_000), commission_rate=100_000))
    backer = UserFactory(username="gen-backer")
    fund(backer.wallet, ath(5_000))
    staking.delegate(backer, checkers[0], ath(5_000))
    services.fix_current_round()  # the scheduler's first tick
    for checker in checkers:
        for node in nodes:
            report(0, node, checker)
    reserve_before = ledger.module_account(ModuleAccount.EMISSION_RESERVE).available
    set_epoch(1)
    result = services.settle(0)

    # The split's rounding (a few uATH) goes to dust; nothing stays behind.
    assert ath(200) - 3 <= result.checker_emission <= ath(200)
    lines = SettlementLine.objects.filter(epoch=0, kind=LineKind.CHECKER_REWARD)
    assert sum(lines.values_list("amount", flat=True)) == result.checker_emission
    reserve_after = ledger.module_account(ModuleAccount.EMISSION_RESERVE).available
    assert reserve_before - reserve_after == result.emission == ath(1_000)
    for checker in checkers:
        checker.refresh_from_db()
        period = RewardPeriod.objects.get(checker=checker, epoch=0)
        assert period.eligible_stake == checker.total_stake
        assert period.commission == period.reward // 10
    assert result.checkers_paid == 3
    # The backer's share of checker-0's reward is claimable.
    assert staking_queries.pending_rewards(backer.wallet, checkers[0]) > 0
    assert verify_ledger().ok


def test_stake_bonded_after_the_round_waits_for_the_next_epoch(small_network):
    checker = small_network["checkers"][0]
    late = UserFactory(username="late-backer")
    fund(late.wallet, ath(1_000))
    assert assignment.round_fixed(6)
    staking.delegate(late, checker, ath(1_000), epoch=6)  # round 6 already fixed
    staking.distribute(checker, ath(100), 6, ledger.module_account(ModuleAccount.EMISSION_RESERVE))
    assert staking_queries.pending_rewards(late.wallet, checker) == 0


def _misreported_epoch(small_network):
    """Epoch 6: checker-2 is far off on A's and B's uptime, enough to jail it
    (the minimum count lowered to 2); then epoch 7 begins."""
    parameters.apply({"misreport_jail_min": 2}, effective_epoch=0, source="test")
    a, b, c = small_network["nodes"]
    c0, c1, c2 = small_network["checkers"]
    for checker in (c0, c1, c2):
        for node in (a, b, c):
            report(6, node, checker, **({"uptime_ppm": 100_000} if checker == c2 and node != c else {}))
    set_epoch(7)


def test_a_checker_jailed_by_settlement_e_is_paid_for_e_plus_1_and_left_out_after(small_network):
    _misreported_epoch(small_network)
    a, b, c = small_network["nodes"]
    c0, c1, c2 = small_network["checkers"]
    services.fix_current_round()  # round 7, fixed before epoch 6 is settled
    services.settle(6)
    c2.refresh_from_db()
    assert c2.status == CheckerStatus.JAILED
    assert c2.pk in AssignmentRound.objects.get(epoch=7).checker_ids
    for checker in (c0, c1, c2):
        for node in (a, b, c):
            report(7, node, checker)
    set_epoch(8)
    services.fix_current_round()
    assert c2.pk not in AssignmentRound.objects.get(epoch=8).checker_ids
    services.settle(7)
    line = SettlementLine.objects.get(epoch=7, kind=LineKind.CHECKER_REWARD, checker=c2)
    assert line.amount > 0 and "3 correct" in line.reason
    assert verify_ledger().ok


def test_a_node_suspended_by_settlement_e_earns_nothing_for_e_plus_1(small_network):
    a, b, c = small_network["nodes"]
    checkers = small_network["checkers"]
    for checker in checkers:
        report(6, a, checker, spec_ok=False, gpu_name_seen="NVIDIA GeForce RTX 3090 24GB")
        report(6, b, checker)
        report(6, c, checker)
    set_epoch(7)
    services.fix_current_round()  # round 7 still has A: it was fixed before the settlement
    services.settle(6)
    a.refresh_from_db()
    assert a.status == NodeStatus.SUSPENDED
    for checker in checkers:
        for node in (a, b, c):
            report(7, node, checker)  # A answers perfectly in epoch 7
    set_epoch(8)
    services.fix_current_round()
    assert a.pk not in AssignmentRound.objects.get(epoch=8).node_ids
    services.settle(7)
    assert not SettlementLine.objects.filter(epoch=7, node=a, kind=LineKind.PROVIDER_REWARD).exists()
    assert not SettlementLine.objects.filter(epoch=7, node=a, kind=LineKind.SLA_BREACH).exists()
    paid = SettlementLine.objects.filter(epoch=7, kind=LineKind.PROVIDER_REWARD)
    assert sorted(paid.values_list("node_id", flat=True)) == sorted([b.pk, c.pk])
    assert verify_ledger().ok


def test_the_round_is_fixed_once_even_if_the_scheduler_restarts(small_network):
    set_epoch(7)
    first = services.fix_current_round()
    rows = AssignmentRound.objects.get(epoch=7)
    # A "restarted scheduler" fixes again after a checker was jailed: nothing changes.
    staking.jail(small_network["checkers"][0], "test", epoch=7)
    assert services.fix_current_round() == first
    assert AssignmentRound.objects.get(epoch=7).checker_ids == rows.checker_ids
    assert AssignmentRound.objects.filter(epoch=7).count() == 1


def test_a_scheduler_tick_fixes_the_current_round_before_it_settles(small_network):
    """The round of the new epoch comes first and is fixed with the checkers
    active then; the settlement that follows jails for the round after."""
    _misreported_epoch(small_network)
    c2 = small_network["checkers"][2]
    past_grace = timedelta(seconds=services.grace_seconds_default() + 1)
    ChainHead.objects.filter(pk=1).update(genesis_at=F("genesis_at") - past_grace)
    settled = scheduler.tick(log_line=lambda s: None)
    assert 6 in [r.epoch for r in settled]
    assert c2.pk in AssignmentRound.objects.get(epoch=7).checker_ids  # fixed before the jailing
    c2.refresh_from_db()
    assert c2.status == CheckerStatus.JAILED


def test_the_scheduler_wakes_for_the_boundary_and_for_the_settlement(genesis, monkeypatch):
    length = epochs.length().total_seconds()
    grace = services.grace_seconds_default()
    start = epochs.current().start
    # Just after a boundary: the settlement of the epoch before is next.
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=1))
    assert abs(scheduler._seconds_to_next_duty() - (grace - 1 + 0.5)) < 0.01
    # After the grace: the next boundary is next.
    monkeypatch.setattr(timezone, "now", lambda: start + timedelta(seconds=grace + 1))
    assert abs(scheduler._seconds_to_next_duty() - (length - grace - 1 + 0.05)) < 0.01

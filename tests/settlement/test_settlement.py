"""Settlement of a small network, to amounts worked out by hand."""

import pytest

from apps.core import ledger, parameters
from apps.core.amounts import ath
from apps.core.models import Account, LedgerTransaction, ModuleAccount, NodeStatus
from apps.core.verify import verify_ledger
from apps.settlement import services
from apps.settlement.models import EpochSettlement, LineKind, SettlementLine
from apps.staking import queries as staking_queries

from .conftest import report, set_epoch


def balances():
    return dict(Account.objects.values_list("pk", "available"))


def test_worked_example(small_network):
    """Emission 1,000 ATH: providers 70% = 700, checkers 20% = 200, community 10% = 100.

    Providers, by capacity weight x GPUs x uptime:
      A  H100 (weight 10) x 1 GPU x 100%  -> 10,000,000
      B  A100 (weight 5)  x 2 GPUs x 100% -> 10,000,000   (reports 99%, 100%, 100%: median 100%)
      C  RTX 4090 x 4, down (uptime 0)    -> 0, earns nothing
      A and B get 350 ATH each.
    Checkers, by correct reports: checker-2 misreports A (50% uptime, beyond the
    5-point tolerance): correct reports 3, 3, 2 of 8 -> 75, 75, 50 ATH; each pays
    5% commission to its operator, the rest to its stakers (here the operator's
    own self-stake).
    """
    a, b, c = small_network["nodes"]
    c0, c1, c2 = small_network["checkers"]
    for checker in (c0, c1, c2):
        report(6, a, checker, **({"uptime_ppm": 500_000, "task_ppm": 500_000} if checker == c2 else {}))
        report(6, b, checker, **({"uptime_ppm": 990_000, "task_ppm": 990_000} if checker == c0 else {}))
        report(6, c, checker, uptime_ppm=0, task_ppm=0, latency_ms=None, spec_ok=None)
    reserve = ledger.module_account(ModuleAccount.EMISSION_RESERVE)
    pool = ledger.module_account(ModuleAccount.COMMUNITY_POOL)
    before = balances()
    set_epoch(7)

    result = services.settle(6)

    after = balances()
    gained = {pk: after[pk] - before.get(pk, 0) for pk in after}
    assert gained[reserve.pk] == -ath(1_000)
    assert gained[pool.pk] == ath(100)
    assert gained[a.provider.wallet.pk] == ath(350)
    assert gained[b.provider.wallet.pk] == ath(350)
    assert gained[c.provider.wallet.pk] == 0
    for checker, reward in ((c0, ath(75)), (c1, ath(75)), (c2, ath(50))):
        commission = reward * 5 // 100
        assert gained[checker.operator.wallet.pk] == commission
        assert staking_queries.pending_rewards(checker.operator.wallet, checker) == reward - commission
    assert (result.emission, result.provider_emission, result.checker_emission, result.community_emission) == (
        ath(1_000),
        ath(700),
        ath(200),
        ath(100),
    )
    assert (result.nodes_paid, result.checkers_paid, result.nodes_valid) == (2, 3, 3)
    # Every amount has its line and reason.
    line = SettlementLine.objects.get(epoch=6, kind=LineKind.PROVIDER_REWARD, node=a)
    assert line.amount == ath(350) and "uptime 100.00%" in line.reason
    assert SettlementLine.objects.get(epoch=6, kind=LineKind.CHECKER_REWARD, checker=c2).reason.startswith(
        "checker-2: 2 correct"
    )
    c.refresh_from_db()
    assert c.status == NodeStatus.DEGRADED
    assert SettlementLine.objects.filter(epoch=6, kind=LineKind.SLA_BREACH, node=c).exists()
    assert verify_ledger().ok


def test_settling_twice_pays_once(small_network):
    a, b, _ = small_network["nodes"]
    for checker in small_network["checkers"]:
        report(6, a, checker)
        report(6, b, checker)
    set_epoch(7)
    assert services.due_epochs(grace_seconds=0) == [0, 1, 2, 3, 4, 5, 6]
    services.settle(6)
    snapshot = balances()
    with pytest.raises(services.AlreadySettled):
        services.settle(6)
    assert balances() == snapshot
    assert EpochSettlement.objects.filter(epoch=6).count() == 1
    assert 6 not in services.due_epochs(grace_seconds=0)


def test_a_false_spec_slashes_the_whole_required_collateral(small_network):
    a, b, _ = small_network["nodes"]
    for checker in small_network["checkers"]:
        report(6, a, checker, spec_ok=False, gpu_name_seen="NVIDIA GeForce RTX 3090 24GB")
        report(6, b, checker)
    required = a.required_collateral
    pool_before = ledger.module_account(ModuleAccount.COMMUNITY_POOL).available
    set_epoch(7)
    result = services.settle(6)
    a.refresh_from_db()
    a.provider.wallet.refresh_from_db()
    assert (a.status, a.collateral, a.paused) == (NodeStatus.SUSPENDED, 0, True)
    assert a.provider.wallet.collateral == 0
    assert result.collateral_slashed == required
    assert ledger.module_account(ModuleAccount.COMMUNITY_POOL).available == pool_before + required + ath(100)
    # A lying node earns nothing: B takes the whole provider share.
    assert SettlementLine.objects.get(epoch=6, kind=LineKind.PROVIDER_REWARD, node=b).amount == ath(700)
    assert verify_ledger().ok
    # The line carries its inputs (docs/auditing.md) and names its posting.
    line = SettlementLine.objects.get(epoch=6, kind=LineKind.FALSE_SPEC_SLASH, node=a)
    d = line.details
    assert (d["required_collateral"], d["collateral_before"]) == (required, required)
    assert -line.amount == min(d["collateral_before"], d["required_collateral"] * d["false_spec_slash_ppm"] // 10**6)
    tx = LedgerTransaction.objects.get(height=d["tx_height"])
    assert (tx.kind, tx.meta["epoch"]) == ("slash", 6)


def test_repeated_misreports_slash_and_jail_the_checker(small_network):
    # A checker that files few reports: two incorrect of three judged is over
    # both the share and (lowered here) the minimum count.
    parameters.apply({"misreport_jail_min": 2}, effective_epoch=0, source="test")
    a, b, _ = small_network["nodes"]
    c0, c1, c2 = small_network["checkers"]
    for checker in (c0, c1, c2):
        report(6, a, checker, uptime_ppm=100_000 if checker == c2 else 1_000_000)
        report(6, b, checker, uptime_ppm=100_000 if checker == c2 else 1_000_000)
    set_epoch(7)
    result = services.settle(6)
    c2.refresh_from_db()
    assert c2.status == "jailed"
    assert result.jailed == 1 and result.stake_slashed == ath(10_000) // 100  # 1% of its bonded stake
    line = SettlementLine.objects.get(epoch=6, kind=LineKind.CHECKER_SLASH, checker=c2)
    assert line.amount == -ath(100)
    # The bar is recomputable from the line: the others were wrong on none of
    # their 4 judged reports in epoch 6, so 0 were expected of c2.
    assert line.details["network_by_epoch"] == {"6": [0, 4]}
    assert line.details["expected_incorrect"] == "0/1"
    assert "at least 2x the 0.0 expected at the other checkers' rates" in line.reason
    assert verify_ledger().ok

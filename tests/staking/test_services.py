"""Staking rules, one scenario at a time, with exact numbers."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.services import open_wallet
from apps.core import ledger
from apps.core.amounts import ath
from apps.core.models import CheckerStatus, ModuleAccount
from apps.core.verify import verify_ledger
from apps.staking import queries, services
from apps.staking.models import Delegation, SlashImpact, UnbondingEntry

from ..factories import UserFactory, fund


def reserve():
    return ledger.module_account(ModuleAccount.EMISSION_RESERVE)


def test_activation_bonds_self_stake_and_sets_status(operator, checker):
    wallet = open_wallet(operator)
    assert (wallet.available, wallet.bonded) == (ath(20_000), ath(10_000))
    assert (checker.status, checker.self_stake, checker.total_stake) == (CheckerStatus.ACTIVE, ath(10_000), ath(10_000))


def test_activation_below_minimum_is_refused(operator):
    with pytest.raises(services.StakingError, match="at least 10,000 ATH"):
        services.activate_checker(operator, "Tiny", ath(9_999), epoch=0)
    assert open_wallet(operator).bonded == 0


def test_delegation_earns_only_from_the_epoch_after_it(checker, funded):
    # Epoch 3: delegate; epoch 3's reward (settled later, in epoch 4) must not reach it.
    services.delegate(funded, checker, ath(10_000 // 10), epoch=3)
    services.distribute(checker, ath(100), 3, reserve())
    assert queries.pending_rewards(open_wallet(funded), checker) == 0
    # Epoch 4's reward is shared 10,000 : 1,000 after 5% commission.
    services.distribute(checker, ath(110), 4, reserve())
    assert queries.pending_rewards(open_wallet(funded), checker) == ath(110) * 95 // 100 * 1_000 // 11_000


def test_delegating_after_an_epoch_but_before_its_settlement_gets_nothing_of_it(checker, user, other_user):
    fund(open_wallet(user), ath(1_000))
    services.distribute(checker, ath(10), 1, reserve())  # epoch 1 settled
    services.delegate(user, checker, ath(1_000), epoch=3)  # epoch 2 ended, not yet settled
    services.distribute(checker, ath(100), 2, reserve())
    assert queries.pending_rewards(open_wallet(user), checker) == 0


def test_commission_is_paid_first_and_rounds_down(checker, operator):
    before = open_wallet(operator).available
    services.distribute(checker, 1_999_999, 1, reserve())
    assert open_wallet(operator).available - before == 1_999_999 * 50_000 // 1_000_000  # 99,999
    assert queries.pending_rewards(open_wallet(operator), checker) == 1_999_999 - 99_999


def test_distribution_cost_does_not_depend_on_delegators(checker):
    def queries_for(n, epoch):
        people = [UserFactory() for _ in range(n)]
        for p in people:
            fund(open_wallet(p), ath(2))
            services.delegate(p, checker, ath(1), epoch=epoch - 1)
        with CaptureQueriesContext(connection) as ctx:
            services.distribute(checker, ath(1_000), epoch, reserve())
        return len(ctx.captured_queries)

    assert queries_for(2, 2) == queries_for(50, 4)


def test_undelegate_unbonds_then_matures(checker, funded):
    services.delegate(funded, checker, ath(100), epoch=1)
    entry = services.undelegate(funded, checker, ath(40), epoch=2)
    assert entry.maturity_epoch == 9
    wallet = open_wallet(funded)
    assert (wallet.available, wallet.bonded, wallet.unbonding) == (ath(900), ath(60), ath(40))
    assert services.mature_unbonding(8) == (0, 0)
    assert services.mature_unbonding(9) == (1, ath(40))
    assert services.mature_unbonding(9) == (0, 0)  # idempotent
    wallet.refresh_from_db()
    assert (wallet.available, wallet.unbonding) == (ath(940), 0)


def test_slash_takes_bonded_and_later_unbonding_pro_rata_and_records_it(checker, operator, funded):
    services.delegate(funded, checker, ath(1_000), epoch=1)
    early = services.undelegate(funded, checker, ath(100), epoch=2)  # before the infraction: safe
    late = services.undelegate(funded, checker, ath(200), epoch=5)  # at the infraction: slashed
    burn_before = ledger.module_account(ModuleAccount.BURN).available
    event = services.slash_checker(checker, 100_000, 5, "misreports", epoch=6)
    assert event.bonded_amount == ath(1_000) + ath(70)  # 10% of 10,000 and of 700
    assert event.unbonding_amount == ath(20)
    assert ledger.module_account(ModuleAccount.BURN).available - burn_before == event.total_amount
    early.refresh_from_db(), late.refresh_from_db()
    assert (early.amount, late.amount) == (ath(100), ath(180))
    touched = {(i.delegator.owner_id, i.source, i.amount) for i in SlashImpact.objects.filter(slash=event)}
    assert touched == {
        (operator.pk, "bonded", ath(1_000)),
        (funded.pk, "bonded", ath(70)),
        (funded.pk, "unbonding", ath(20)),
    }
    checker.refresh_from_db()
    assert checker.status == CheckerStatus.INACTIVE  # self-stake 9,000 < 10,000
    assert verify_ledger().ok


def test_redelegated_stake_answers_for_the_source_infraction(checker, operator, funded):
    other = UserFactory()
    fund(open_wallet(other), ath(20_000))
    beta = services.activate_checker(other, "Beta", ath(10_000), epoch=0)
    services.delegate(funded, checker, ath(500), epoch=1)
    services.redelegate(funded, checker, beta, ath(500), epoch=3)
    with pytest.raises(services.StakingError, match="can move on from epoch 10"):
        services.redelegate(funded, beta, checker, ath(100), epoch=4)
    event = services.slash_checker(checker, 100_000, 2, "misreports", epoch=4)
    assert event.redelegated_amount == ath(50)
    assert queries.delegated_to(open_wallet(funded), beta) == ath(450)


def test_closing_a_position_pays_its_rewards(checker, funded):
    services.delegate(funded, checker, ath(100), epoch=0)
    services.distribute(checker, ath(11), 1, reserve())
    owed = queries.pending_rewards(open_wallet(funded), checker)
    assert owed > 0
    services.undelegate(funded, checker, ath(100), epoch=2)
    assert not Delegation.objects.filter(delegator=open_wallet(funded)).exists()
    assert open_wallet(funded).available == ath(900) + owed


def test_jail_and_unjail_only_by_operator_after_the_term(checker, operator, user):
    services.jail(checker, "missed assignments", epoch=3, duration=5)
    checker.refresh_from_db()
    assert checker.status == CheckerStatus.JAILED
    with pytest.raises(services.NotAllowed):
        services.unjail(user, checker, epoch=9)
    with pytest.raises(services.StakingError, match="until epoch 8"):
        services.unjail(operator, checker, epoch=7)
    services.unjail(operator, checker, epoch=8)
    checker.refresh_from_db()
    assert checker.status == CheckerStatus.ACTIVE


def test_unbonding_entry_matures_into_available_even_after_full_exit(checker, funded):
    services.delegate(funded, checker, ath(10), epoch=0)
    services.undelegate(funded, checker, ath(10), epoch=0)
    assert UnbondingEntry.objects.filter(matured_epoch__isnull=True).count() == 1


def test_paying_many_checkers_at_once_pays_what_one_at_a_time_would(genesis):
    """Settlement pays every checker in one posting (distribute_many); each
    checker's commission, index, remainder and rewards must be exactly what
    paying it alone gives, and the unpayable ones are left out."""
    from apps.staking.models import RewardPeriod, StakingState

    def network(prefix):
        checkers = []
        for i, rate in enumerate((0, 50_000, 123_457)):
            op = UserFactory(username=f"{prefix}-op{i}")
            fund(open_wallet(op), ath(20_000))
            checkers.append(
                services.activate_checker(op, f"{prefix}-{i}", ath(10_000 + 7 * i), commission_rate=rate, epoch=0)
            )
            backer = UserFactory(username=f"{prefix}-d{i}")
            fund(open_wallet(backer), ath(1_000))
            services.delegate(backer, checkers[-1], ath(333) + i, epoch=0)
        late = UserFactory(username=f"{prefix}-late")
        fund(open_wallet(late), ath(20_000))
        checkers.append(
            services.activate_checker(late, f"{prefix}-late", ath(10_000), epoch=5)
        )  # nothing before epoch 5
        return checkers

    one, many = network("one"), network("many")
    amounts = [ath(101) + 1, ath(77) + 3, ath(55) + 7, ath(10)]
    for checker, amount in zip(one, amounts, strict=True):
        try:
            services.distribute(checker, amount, 2, reserve())
        except services.StakingError:
            pass
    paid, refused = services.distribute_many({c.pk: a for c, a in zip(many, amounts, strict=True)}, 2, reserve())
    assert set(paid) == {c.pk for c in many} and not refused
    # No stake backed epoch 2 at the late checker: its whole reward is the operator's.
    late = paid[many[3].pk]
    assert (late.commission, late.delegators_share, late.eligible_stake) == (amounts[3], 0, 0)

    fields = [
        "period",
        "last_epoch",
        "cumulative_ratio",
        "remainder_scaled",
        "rewards_outstanding",
        "rewards_total",
        "commission_total",
        "dust_total",
    ]
    for a, b in zip(one, many, strict=True):
        sa, sb = StakingState.objects.get(checker=a), StakingState.objects.get(checker=b)
        assert [getattr(sa, f) for f in fields] == [getattr(sb, f) for f in fields]
        assert open_wallet(a.operator).available == open_wallet(b.operator).available
        assert list(
            RewardPeriod.objects.filter(checker=a).values_list(
                "reward", "commission", "delegators_share", "eligible_stake"
            )
        ) == list(
            RewardPeriod.objects.filter(checker=b).values_list(
                "reward", "commission", "delegators_share", "eligible_stake"
            )
        )
    # Paying again for the same epoch is refused for all of them, and pays nothing.
    before = reserve().available
    again, refused = services.distribute_many({c.pk: ath(1) for c in many[:3]}, 2, reserve())
    assert again == {} and all(isinstance(e, services.AlreadyDistributed) for e in refused.values())
    assert reserve().available == before
    assert verify_ledger().ok

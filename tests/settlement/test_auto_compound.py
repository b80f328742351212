"""Settlement compounds the rewards of delegators who chose auto-compound,
right after the epoch's rewards are paid."""

from apps.accounts.services import open_wallet
from apps.core.amounts import ath
from apps.core.verify import verify_ledger
from apps.staking import queries
from apps.staking import services as staking

from ..factories import UserFactory, fund
from .test_pages import settle_example


def test_settling_an_epoch_delegates_an_opted_in_delegators_rewards_back(small_network):
    checker = small_network["checkers"][0]
    person = UserFactory()
    fund(person.wallet, ath(5_000))
    staking.delegate(person, checker, ath(5_000), epoch=5)  # before round 6: earns from epoch 6
    staking.set_auto_compound(person, checker, True)
    settle_example(small_network)
    wallet = open_wallet(person)
    assert queries.pending_rewards(wallet, checker) == 0
    assert queries.delegated_to(wallet, checker) > ath(5_000)
    assert wallet.available == 0
    assert verify_ledger().ok

import pytest

from apps.accounts.services import open_wallet
from apps.core.amounts import ath
from apps.staking import services

from ..factories import UserFactory, fund, rounds_fixed


@pytest.fixture
def operator(genesis):
    # Rounds fixed at every epoch's start, as the scheduler does: stake
    # bonded in epoch e is dated e (see staking.services._common._bonding_epoch).
    rounds_fixed()
    user = UserFactory(username="op")
    fund(open_wallet(user), ath(30_000))
    return user


@pytest.fixture
def checker(operator):
    return services.activate_checker(operator, "Alpha", ath(10_000), commission_rate=50_000, epoch=0)


@pytest.fixture
def funded(user):
    fund(open_wallet(user), ath(1_000))
    return user

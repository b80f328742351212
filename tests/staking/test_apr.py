"""The checker list's recent APR: stakers' rewards over the stake that
earned them, as recorded at each distribution, annualised by the epoch
length."""

import pytest

from apps.accounts.services import open_wallet
from apps.core import ledger
from apps.core.amounts import ath
from apps.core.models import ModuleAccount, ParameterChange
from apps.staking import queries, services
from apps.staking.templatetags.staking_tags import ppm_short

from ..factories import UserFactory, fund


@pytest.fixture
def hourly_epochs(genesis):
    # The protocol's one-hour epochs (8,760 a year) rather than the demo's minute.
    ParameterChange.objects.filter(key="epoch_seconds").update(value=3_600)
    assert queries.epochs_per_year() == 8_760


def _now(monkeypatch, epoch):
    monkeypatch.setattr(queries.epochs, "current_number", lambda: epoch)


def _row(checker):
    return next(r for r in queries.checker_rows() if r.checker.pk == checker.pk)


def _delegator(amount):
    person = UserFactory()
    fund(open_wallet(person), amount)
    return person


def reserve():
    return ledger.module_account(ModuleAccount.EMISSION_RESERVE)


def test_worked_example(checker, hourly_epochs, monkeypatch):
    # 10,000 ATH self-stake (5% commission) + 90,000 ATH delegated before epoch 1.
    backer = _delegator(ath(90_000))
    services.delegate(backer, checker, ath(90_000), epoch=0)
    # Epoch 1: 10 ATH reward -> 0.5 ATH commission, 9.5 ATH to 100,000 ATH of stake.
    services.distribute(checker, ath(10), 1, reserve())
    # 10,000 ATH leaves; epoch 2: 9.5 ATH to the 90,000 ATH still bonded.
    services.undelegate(backer, checker, ath(10_000), epoch=2)
    services.distribute(checker, ath(10), 2, reserve())
    _now(monkeypatch, 3)

    # 19 ATH / (100,000 + 90,000) ATH-epochs = 100 ppm per epoch; x 8,760 = 87.6%.
    assert queries.apr_ppm(ath(19), ath(190_000), 8_760) == 876_000
    row = _row(checker)
    assert row.apr_ppm == 876_000
    assert ppm_short(row.apr_ppm) == "87.6%"


def test_a_slashed_and_emptied_checker_keeps_a_sane_apr(checker, operator, hourly_epochs, monkeypatch):
    backer = _delegator(ath(90_000))
    services.delegate(backer, checker, ath(90_000), epoch=0)
    for epoch in range(1, 5):  # 9.5 ATH an epoch to 100,000 ATH: 83.2% a year
        services.distribute(checker, ath(10), epoch, reserve())
    # Epoch 4: caught misreporting, slashed and jailed; its backers leave,
    # and so does all but one ATH of the operator's own stake.
    services.slash_checker(checker, 10_000, 4, "misreport", epoch=4)
    services.jail(checker, "misreport", epoch=4, duration=1)
    checker.refresh_from_db()
    services.undelegate(backer, checker, queries.delegated_to(open_wallet(backer), checker), epoch=4)
    own = queries.delegated_to(open_wallet(operator), checker)
    services.undelegate(operator, checker, own - ath(1), epoch=4)
    services.unjail(operator, checker, epoch=5)
    # Epoch 5: a reward for its reports, shared by the one ATH left bonded.
    checker.refresh_from_db()
    assert checker.total_stake == ath(1)
    services.distribute(checker, ath(10), 5, reserve())
    _now(monkeypatch, 6)

    apr = _row(checker).apr_ppm
    # 5 x 9.5 ATH / (4 x 100,000 + 1) ATH-epochs x 8,760 = 104.0%: about the
    # 83.2% it paid before, not the 1,188,904% that averaging each epoch's
    # return (9.5 ATH on one ATH is 950% in that epoch alone) would show.
    assert apr == ath(47_500) // 1_000 * 10**6 * 8_760 // ath(400_001) == 1_040_247
    assert ppm_short(apr) == "104%"


def test_no_distribution_in_the_window_shows_a_dash(checker, monkeypatch):
    services.distribute(checker, ath(10), 1, reserve())
    _now(monkeypatch, 1 + queries.apr_window_epochs() + 1)  # that reward is older than the window
    row = _row(checker)
    assert row.apr_ppm is None and ppm_short(row.apr_ppm) == "—"
    assert queries.apr_ppm(0, 0, 8_760) is None


def test_the_checker_list_shows_the_apr(client, checker, hourly_epochs, monkeypatch):
    services.distribute(checker, ath(10), 1, reserve())  # 9.5 ATH on 10,000 ATH
    _now(monkeypatch, 2)
    page = client.get("/staking/").content.decode()
    assert "832.2%" in page  # 9.5 / 10,000 x 8,760

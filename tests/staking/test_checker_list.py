"""The checker list gives enough to choose with: an APR over a day of
epochs at least, each checker's share of the active stake, what an amount
would earn a day, and checkers that take no delegations listed apart."""

from apps.core import ledger
from apps.core.amounts import ath
from apps.core.models import ModuleAccount, ParameterChange
from apps.staking import queries, services


def _now(monkeypatch, epoch):
    monkeypatch.setattr(queries.epochs, "current_number", lambda: epoch)


def test_the_apr_spans_a_day_of_epochs_at_least(genesis):
    ParameterChange.objects.filter(key="epoch_seconds").update(value=60)
    assert queries.apr_window_epochs() == 1_440
    ParameterChange.objects.filter(key="epoch_seconds").update(value=3_600)
    assert queries.apr_window_epochs() == 24
    ParameterChange.objects.filter(key="epoch_seconds").update(value=86_400)
    assert queries.apr_window_epochs() == queries.WINDOW


def test_share_per_day_and_jailed_checkers_apart(client, checker, operator, monkeypatch):
    ParameterChange.objects.filter(key="epoch_seconds").update(value=3_600)
    other = services.activate_checker(operator, "Beta", ath(10_000), commission_rate=50_000, epoch=0)
    reserve = ledger.module_account(ModuleAccount.EMISSION_RESERVE)
    services.distribute(checker, ath(10), 1, reserve)  # 9.5 ATH on 10,000 ATH: 832.2% a year
    services.distribute(other, ath(10), 1, reserve)
    services.jail(other, "misreport", epoch=1, duration=30)
    _now(monkeypatch, 2)

    rows = queries.checker_rows()
    alpha = next(r for r in rows if r.checker.pk == checker.pk)
    beta = next(r for r in rows if r.checker.pk == other.pk)
    assert alpha.share_ppm == 1_000_000  # the only active checker holds all the active stake
    assert beta.share_ppm is None and not beta.takes_delegations
    queries.expected_per_day(rows, ath(1_000))
    assert alpha.per_day == ath(1_000) * alpha.apr_ppm // 1_000_000 // 365
    assert beta.per_day is None

    page = client.get("/staking/?amount=1000&sort=apr").content.decode()
    ranked, apart = page.split('data-testid="checker-table-others"')
    assert "Alpha" in ranked and "Beta" not in ranked
    assert "Beta" in apart and "until epoch 31" in apart
    assert "Not taking delegations" in page
    assert "APR (24 h)" in page and "A day on 1,000 ATH" in page
    assert "100%" in ranked.split('data-testid="stake-share">')[1].split("<")[0]

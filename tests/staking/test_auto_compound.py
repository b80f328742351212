"""Auto-compound: a delegator's choice that each settled epoch claims their
rewards from a checker and delegates them back to it, through the ordinary
claim and delegation (minimum delegation, active checker, exact postings)."""

from django.urls import reverse

from apps.accounts.services import open_wallet
from apps.core import ledger
from apps.core.amounts import ath
from apps.core.models import ModuleAccount
from apps.core.verify import verify_ledger
from apps.staking import queries, services
from apps.staking.models import AutoCompound


def _reward(checker, amount, epoch):
    services.distribute(checker, amount, epoch, ledger.module_account(ModuleAccount.EMISSION_RESERVE))


def test_compound_delegates_the_rewards_back_and_moves_nothing_else(checker, funded):
    services.delegate(funded, checker, ath(500), epoch=1)
    services.set_auto_compound(funded, checker, True)
    _reward(checker, ath(1_000), 2)  # 5% commission; 950 ATH shared by 10,500 ATH of stake
    wallet = open_wallet(funded)
    pending = queries.pending_rewards(wallet, checker)
    available = wallet.available
    assert pending >= ath(1)

    assert services.compound(3) == 1
    wallet.refresh_from_db()
    assert queries.delegated_to(wallet, checker) == ath(500) + pending
    assert wallet.available == available  # claimed and bonded again in the same epoch
    assert queries.pending_rewards(wallet, checker) == 0
    assert verify_ledger().ok


def test_rewards_below_the_minimum_wait_and_off_means_off(checker, funded):
    services.delegate(funded, checker, ath(1), epoch=1)
    services.set_auto_compound(funded, checker, True)
    _reward(checker, ath(10), 2)  # 1 ATH of 10,001: far below the 1 ATH minimum
    assert services.compound(3) == 0
    assert queries.pending_rewards(open_wallet(funded), checker) > 0
    services.set_auto_compound(funded, checker, False)
    assert not AutoCompound.objects.exists()


def test_the_checker_page_turns_it_on_for_a_delegator_only(client, checker, funded, user):
    client.force_login(funded)
    r = client.post(reverse("staking:auto-compound"), {"checker": checker.pk, "on": "1"}, follow=True)
    assert "Delegate to Alpha first." in r.content.decode() and not AutoCompound.objects.exists()
    services.delegate(funded, checker, ath(10), epoch=1)
    page = client.get(reverse("staking:checker", args=[checker.pk])).content.decode()
    assert 'data-testid="auto-compound-on"' in page
    r = client.post(reverse("staking:auto-compound"), {"checker": checker.pk, "on": "1"}, follow=True)
    assert "Auto-compound is on" in r.content.decode() and 'data-testid="auto-compound-off"' in r.content.decode()
    assert AutoCompound.objects.get().delegator == open_wallet(funded)

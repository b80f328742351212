"""Delegators hear what happens to the checkers they back, and holders
what happens to proposals: from the staking and governance records."""

from apps.accounts.services import open_wallet
from apps.core.amounts import ath
from apps.governance.models import Proposal, ProposalStatus
from apps.notifications import detect
from apps.notifications.models import Event, Notification
from apps.staking import services as staking

from ..factories import UserFactory, fund, rounds_fixed


def look():
    """Two passes of the worker: a new record is read the pass after it appears."""
    detect.run_all()
    detect.run_all()


def told(user, event) -> list[Notification]:
    return list(Notification.objects.filter(user=user, event=event))


def test_delegators_hear_of_jail_slash_commission_and_matured_unbonding(genesis):
    rounds_fixed()
    operator, delegator, bystander = UserFactory(), UserFactory(), UserFactory()
    fund(open_wallet(operator), ath(30_000))
    fund(open_wallet(delegator), ath(1_000))
    fund(open_wallet(bystander), ath(1_000))
    checker = staking.activate_checker(operator, "Alpha", ath(10_000), commission_rate=50_000, epoch=0)
    staking.delegate(delegator, checker, ath(500), epoch=1)
    look()

    staking.set_commission(operator, checker, 55_000, epoch=5)
    staking.jail(checker, "missed its rounds", epoch=6)
    staking.slash_checker(checker, 10_000, 6, "double report", epoch=7)
    entry = staking.undelegate(delegator, checker, ath(100), epoch=8)
    staking.mature_unbonding(epoch=entry.maturity_epoch)
    look()
    look()

    [commission] = told(delegator, Event.CHECKER_COMMISSION)
    assert "5.00% to 5.50%" in commission.title
    assert not told(operator, Event.CHECKER_COMMISSION)  # they did it themselves
    assert len(told(delegator, Event.CHECKER_JAILED)) == 1 and len(told(operator, Event.CHECKER_JAILED)) == 1
    [slash] = told(delegator, Event.CHECKER_SLASHED)
    assert "1.00%" in slash.title and slash.body == "double report"
    [matured] = told(delegator, Event.UNBONDING_MATURED)
    assert "100 ATH" in matured.title
    assert not Notification.objects.filter(user=bystander).exists()


def test_holders_hear_a_proposal_open_close_soon_and_pass(genesis, monkeypatch):
    holder, proposer, empty = UserFactory(), UserFactory(), UserFactory()
    fund(open_wallet(holder), ath(10))
    fund(open_wallet(proposer), ath(10))
    open_wallet(empty)
    look()
    proposal = Proposal.objects.create(
        kind="text",
        title="More checkers",
        description="x",
        proposer=proposer.wallet,
        deposit=1,
        status=ProposalStatus.VOTING,
        voting_start_epoch=0,
        voting_end_epoch=100,
        quorum=1,
        threshold=1,
        veto=1,
    )
    look()
    assert len(told(holder, Event.PROPOSAL_OPENED)) == 1
    assert not told(empty, Event.PROPOSAL_OPENED)  # holds nothing
    assert not told(holder, Event.PROPOSAL_ENDING)
    monkeypatch.setattr("apps.core.epochs.current_number", lambda: 99)
    look()
    assert "closes with epoch 100" in told(holder, Event.PROPOSAL_ENDING)[0].title
    Proposal.objects.filter(pk=proposal.pk).update(status=ProposalStatus.PASSED)
    look()
    [decided] = told(holder, Event.PROPOSAL_DECIDED)
    assert "passed" in decided.title and decided.data["status"] == "passed"

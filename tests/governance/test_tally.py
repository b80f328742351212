"""Quorum, veto and threshold with exact integers, at and just below each
bar; deposits refunded or burned; execution of what passed."""

import pytest
from django.core.management import call_command

from apps.core import epochs, ledger, parameters
from apps.core.amounts import ath
from apps.core.models import ModuleAccount, ParameterChange
from apps.core.parameters import pct
from apps.core.verify import verify_ledger
from apps.governance import services
from apps.governance.models import Proposal, ProposalStatus
from apps.governance.services import Tally

from .conftest import end_voting, wallet


def make(yes=0, no=0, abstain=0, veto_votes=0, total=1_000, quorum=pct("33.4"), threshold=pct(50), veto=pct("33.4")):
    return Tally(
        yes=yes,
        no=no,
        abstain=abstain,
        no_with_veto=veto_votes,
        voters=1,
        total_power=total,
        quorum=quorum,
        threshold=threshold,
        veto=veto,
    )


class TestTallyArithmetic:
    def test_quorum_exactly_at_the_bar_is_reached(self):
        assert make(yes=334, total=1_000).quorum_reached

    def test_quorum_just_below_the_bar_is_not(self):
        assert not make(yes=333, total=1_000).quorum_reached
        # One micro-ATH short on a large total, where a float would round it away.
        total = ath(42_000_000_000)
        at = total * 334_000 // 1_000_000
        assert make(yes=at, total=total).quorum_reached
        assert not make(yes=at - 1, total=total).quorum_reached

    def test_abstain_counts_toward_quorum(self):
        assert make(abstain=334, total=1_000).quorum_reached

    def test_nothing_cast_never_reaches_quorum(self):
        assert not make(total=0).quorum_reached

    def test_veto_exactly_at_the_bar_vetoes(self):
        assert make(yes=666, veto_votes=334).vetoed
        assert make(yes=666, veto_votes=334).outcome == ProposalStatus.VETOED

    def test_veto_just_below_the_bar_does_not(self):
        assert not make(yes=667, veto_votes=333).vetoed
        assert make(yes=667, veto_votes=333).outcome == ProposalStatus.PASSED

    def test_yes_exactly_at_the_threshold_fails(self):
        assert not make(yes=500, no=500).threshold_reached
        assert make(yes=500, no=500).outcome == ProposalStatus.REJECTED

    def test_yes_just_above_the_threshold_passes(self):
        assert make(yes=501, no=499).threshold_reached

    def test_abstain_is_left_out_of_the_threshold(self):
        assert make(yes=2, no=1, abstain=997).outcome == ProposalStatus.PASSED

    def test_deposit_is_refunded_only_with_quorum_and_no_veto(self):
        assert make(yes=500, no=500).refunds_deposit  # rejected, but a real vote
        assert not make(yes=100, total=1_000).refunds_deposit  # no quorum
        assert not make(yes=600, veto_votes=400).refunds_deposit  # vetoed


def balances(user):
    w = wallet(user)
    return w.available


def burned():
    return ledger.module_account(ModuleAccount.BURN).available


# The snapshot: the proposer has 10,000 ATH of power after the deposit, two
# holders share 20,000 ATH, so the total is exactly 30,000 ATH and 33.4% of
# it is 10,020 ATH.
TOTAL = ath(30_000)
QUORUM_AT = ath(10_020)


@pytest.mark.parametrize("short", [0, 1], ids=["exactly-at-quorum", "one-uath-below"])
def test_quorum_boundary_through_the_service(holder, proposer, propose, short):
    alice = holder(QUORUM_AT - short)
    holder(TOTAL - ath(10_000) - (QUORUM_AT - short))
    proposal = propose()
    assert proposal.snapshot_power == TOTAL
    services.cast_vote(alice, proposal.pk, "yes")
    end_voting(proposal)
    before = balances(proposer)
    [done] = services.tally_due()
    if short:
        assert done.status == ProposalStatus.REJECTED and "quorum" in done.status_reason
        assert balances(proposer) == before and burned() == ath(10_000)
    else:
        assert done.status == ProposalStatus.PASSED
        assert balances(proposer) == before + ath(10_000) and burned() == 0


@pytest.mark.parametrize("short", [0, 1], ids=["veto-exactly-at-bar", "veto-one-uath-below"])
def test_veto_boundary_through_the_service(holder, proposer, propose, short):
    # Cast = 10,000 ATH; the veto bar is 33.4% of it = 3,340 ATH.
    yes_voter = holder(ath(6_660) + short)
    vetoer = holder(ath(3_340) - short)
    holder(ath(5_000))  # keeps quorum well reached either way
    proposal = propose()
    services.cast_vote(yes_voter, proposal.pk, "yes")
    services.cast_vote(vetoer, proposal.pk, "no_with_veto")
    end_voting(proposal)
    before = balances(proposer)
    [done] = services.tally_due()
    if short:
        assert done.status == ProposalStatus.PASSED
        assert balances(proposer) == before + ath(10_000)
    else:
        assert done.status == ProposalStatus.VETOED
        assert balances(proposer) == before and burned() == ath(10_000)


@pytest.mark.parametrize("extra", [0, 1], ids=["yes-equals-no", "yes-one-uath-more"])
def test_threshold_boundary_through_the_service(holder, proposer, propose, extra):
    yes_voter, no_voter = holder(ath(4_000) + extra), holder(ath(4_000))
    abstainer = holder(ath(9_000))
    proposal = propose()
    services.cast_vote(yes_voter, proposal.pk, "yes")
    services.cast_vote(no_voter, proposal.pk, "no")
    services.cast_vote(abstainer, proposal.pk, "abstain")
    end_voting(proposal)
    before = balances(proposer)
    [done] = services.tally_due()
    assert done.status == (ProposalStatus.PASSED if extra else ProposalStatus.REJECTED)
    # Quorum reached and not vetoed: the deposit comes back either way.
    assert balances(proposer) == before + ath(10_000)
    assert (done.yes, done.no, done.abstain, done.voters) == (ath(4_000) + extra, ath(4_000), ath(9_000), 3)


def test_no_votes_at_all_burns_the_deposit(proposer, propose):
    proposal = propose()
    end_voting(proposal)
    [done] = services.tally_due()
    assert done.status == ProposalStatus.REJECTED and burned() == ath(10_000)
    assert [e.kind for e in done.events.all()] == ["created", "voting", "tallied", "deposit_burned"]


def test_tally_waits_for_the_end_and_runs_once(holder, propose):
    alice = holder(ath(50_000))
    proposal = propose()
    services.cast_vote(alice, proposal.pk, "yes")
    assert services.tally_due() == []  # still open
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.VOTING
    end_voting(proposal)
    with pytest.raises(services.GovernanceError, match="has ended"):
        services.cast_vote(alice, proposal.pk, "no")
    assert len(services.tally_due()) == 1
    assert services.tally_due() == []
    with pytest.raises(services.GovernanceError, match="not open"):
        services.cast_vote(alice, proposal.pk, "no")
    assert verify_ledger().ok


def test_the_management_command_tallies(holder, propose, capsys):
    alice = holder(ath(50_000))
    proposal = propose()
    services.cast_vote(alice, proposal.pk, "yes")
    end_voting(proposal)
    call_command("tally_proposals")
    out = capsys.readouterr().out
    assert f"#{proposal.pk}" in out and "Passed" in out and "1 proposal tallied" in out


def test_a_passed_parameter_change_is_in_force_from_the_next_epoch(client, holder, propose):
    alice = holder(ath(50_000))
    proposal = propose(kind="parameters", changes={"protocol_fee": pct(25), "min_vram_gb": 24})
    services.cast_vote(alice, proposal.pk, "yes")
    end_voting(proposal)
    now = epochs.current_number()
    [done] = services.tally_due()
    assert done.status == ProposalStatus.EXECUTED and done.effective_epoch == now + 1
    assert parameters.get("protocol_fee", now) == pct(20)
    assert parameters.get("protocol_fee", now + 1) == pct(25)
    assert parameters.current(now + 1)["min_vram_gb"] == 24 and parameters.current(now)["min_vram_gb"] == 16
    assert ParameterChange.objects.filter(source=f"Proposal #{proposal.pk}").count() == 2

    page = client.get("/governance/parameters/").content.decode()
    assert f'href="/governance/{proposal.pk}/">Proposal #{proposal.pk}</a>' in page
    assert f"25% from epoch {now + 1}" in page and "pending" in page


def test_a_parameter_change_that_no_longer_fits_fails_to_execute(holder, propose):
    alice = holder(ath(50_000))
    # Each is within bounds and consistent with today's values (R = 3, quorum = 2)...
    lower_r = propose(kind="parameters", changes={"replication": 2})
    raise_quorum = propose(kind="parameters", changes={"report_quorum": 3})
    for p in (lower_r, raise_quorum):
        services.cast_vote(alice, p.pk, "yes")
        end_voting(p)
    # ...but once R is 2, a report quorum of 3 cannot apply.
    statuses = [p.status for p in services.tally_due()]
    assert statuses == [ProposalStatus.EXECUTED, ProposalStatus.FAILED]
    raise_quorum.refresh_from_db()
    assert "report quorum cannot exceed" in raise_quorum.status_reason
    assert parameters.get("report_quorum", epochs.current_number() + 1) == 2


def test_a_spend_is_paid_from_the_pool(holder, propose):
    alice, grantee = holder(ath(50_000)), holder(0)
    pool_before = ledger.module_account(ModuleAccount.COMMUNITY_POOL).available
    proposal = propose(kind="spend", recipient_address=wallet(grantee).address, amount=ath(12_345))
    services.cast_vote(alice, proposal.pk, "yes")
    end_voting(proposal)
    [done] = services.tally_due()
    assert done.status == ProposalStatus.EXECUTED
    assert wallet(grantee).available == ath(12_345)
    assert ledger.module_account(ModuleAccount.COMMUNITY_POOL).available == pool_before - ath(12_345)
    assert verify_ledger().ok


def test_a_spend_larger_than_the_pool_at_execution_fails_cleanly(holder, proposer, propose):
    alice, grantee = holder(ath(50_000)), holder(0)
    pool = ledger.module_account(ModuleAccount.COMMUNITY_POOL).available
    share = pool * 6 // 10  # each fits the pool at creation; both together do not
    first = propose(kind="spend", recipient_address=wallet(grantee).address, amount=share)
    second = propose(kind="spend", recipient_address=wallet(grantee).address, amount=share)
    for p in (first, second):
        services.cast_vote(alice, p.pk, "yes")
        end_voting(p)
    before = balances(proposer)
    first_done, second_done = services.tally_due()
    assert first_done.status == ProposalStatus.EXECUTED
    assert second_done.status == ProposalStatus.FAILED
    assert "community pool holds" in second_done.status_reason
    # Nothing moved for the failed spend; the pool paid exactly once.
    assert wallet(grantee).available == share
    assert ledger.module_account(ModuleAccount.COMMUNITY_POOL).available == pool - share
    # The vote itself reached quorum without a veto: both deposits come back.
    assert balances(proposer) == before + 2 * ath(10_000)
    assert [e.kind for e in second_done.events.all()][-2:] == ["deposit_refunded", "failed"]
    assert verify_ledger().ok


def test_rules_are_fixed_when_the_proposal_opens(holder, propose):
    proposal = propose()
    ParameterChange.objects.create(key="quorum", value=pct(90), effective_epoch=0, source="test")
    assert Proposal.objects.get(pk=proposal.pk).quorum == pct("33.4")

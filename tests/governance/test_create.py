"""Creating proposals: parameters checked against their hard bounds at
creation, the deposit locked through the ledger, refusals write nothing."""

import pytest

from apps.core import ledger
from apps.core.amounts import ath
from apps.core.models import LedgerTransaction, ModuleAccount, TxKind
from apps.core.parameters import pct
from apps.governance import services
from apps.governance.models import Proposal, ProposalStatus

from .conftest import wallet


def nothing_written(user, height_before):
    assert not Proposal.objects.exists()
    assert LedgerTransaction.objects.order_by("-height").first().height == height_before
    assert wallet(user).available == ath(20_000)
    assert ledger.module_account(ModuleAccount.GOV_DEPOSITS).available == 0


def head():
    return LedgerTransaction.objects.order_by("-height").first().height


def test_creating_locks_the_deposit_and_opens_the_vote(proposer, propose):
    proposal = propose(deposit=ath(12_000))
    assert proposal.status == ProposalStatus.VOTING
    assert wallet(proposer).available == ath(8_000)
    assert ledger.module_account(ModuleAccount.GOV_DEPOSITS).available == ath(12_000)
    tx = LedgerTransaction.objects.get(height=proposal.deposit_height)
    assert tx.kind == TxKind.DEPOSIT and tx.meta == {"proposal": proposal.pk}
    assert proposal.snapshot_height == tx.height
    assert proposal.voting_end_epoch - proposal.voting_start_epoch == 24
    assert (proposal.quorum, proposal.threshold, proposal.veto) == (pct("33.4"), pct(50), pct("33.4"))
    assert [e.kind for e in proposal.events.all()] == ["created", "voting"]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"protocol_fee": pct(51)}, "between 0% and 50%"),
        ({"sla_max_latency_ms": 5}, "between 10 ms and 2,000 ms"),
        ({"emission_per_epoch": ath(10_000_001)}, "between 0 ATH and 10,000,000 ATH"),
        ({"quorum": 0}, "between 1% and 100%"),
        ({"epoch_seconds": 120}, "cannot be changed by governance"),
        ({"no_such_thing": 1}, "Unknown parameter"),
        ({"emission_provider_share": pct(80)}, "must add up to 100%"),
        ({"protocol_fee": pct(20)}, "already has that value"),
        ({"protocol_fee": "20"}, "whole number"),
        ({}, "at least one parameter"),
    ],
)
def test_bad_parameter_changes_are_refused_at_creation(proposer, propose, changes, message):
    before = head()
    with pytest.raises(services.GovernanceError, match=message):
        propose(kind="parameters", changes=changes)
    nothing_written(proposer, before)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"deposit": ath(9_999)}, "minimum deposit is 10,000 ATH"),
        ({"deposit": ath(20_001)}, "deposit needs 20,001 ATH of available ATH; you have 20,000 ATH"),
        ({"title": "  "}, "title"),
        ({"title": "x" * 141}, "at most 140"),
        ({"description": ""}, "Describe"),
        ({"kind": "coup"}, "Choose a kind"),
        ({"kind": "spend", "recipient_address": "ath1nobody", "amount": 5}, "No wallet has that"),
        ({"kind": "spend", "recipient_address": "ath1modulecommunitypool", "amount": 5}, "not module accounts"),
    ],
)
def test_bad_proposals_are_refused_and_write_nothing(proposer, propose, kwargs, message):
    before = head()
    with pytest.raises(services.GovernanceError, match=message):
        propose(**kwargs)
    nothing_written(proposer, before)


def test_a_spend_cannot_ask_for_more_than_the_pool_holds(holder, proposer, propose):
    grantee = holder(0)
    pool = ledger.module_account(ModuleAccount.COMMUNITY_POOL).available
    before = head()
    with pytest.raises(services.GovernanceError, match="community pool holds"):
        propose(kind="spend", recipient_address=wallet(grantee).address, amount=pool + 1)
    nothing_written(proposer, before)


def test_a_proposal_left_in_deposit_is_opened_by_the_next_tally_run(proposer, propose, monkeypatch):
    # The process dies between locking the deposit and totalling the snapshot.
    monkeypatch.setattr(services, "open_voting", lambda pk: Proposal.objects.get(pk=pk))
    proposal = propose()
    assert proposal.status == ProposalStatus.DEPOSIT
    monkeypatch.undo()
    services.tally_due()
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.VOTING and proposal.snapshot_power == ath(10_000)

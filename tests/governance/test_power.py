"""Voting power comes from the ledger's checkpoints at the proposal's
snapshot: tokens moved or received afterwards add nothing."""

import pytest

from apps.core import ledger
from apps.core.amounts import ath
from apps.core.models import Account, AccountKind, Bucket, TxKind
from apps.governance import services
from apps.governance.models import Vote

from ..factories import fund
from .conftest import wallet


def test_tokens_moved_after_the_snapshot_do_not_vote_twice(holder, propose):
    alice = holder(ath(1_000))
    carol = holder(ath(500))
    proposal = propose()
    # After the snapshot Alice hands all her ATH to Carol and to a newcomer.
    newcomer = holder(0)
    ledger.transfer(wallet(alice), wallet(carol), ath(600), memo="after the snapshot")
    ledger.transfer(wallet(alice), wallet(newcomer), ath(400), memo="after the snapshot")

    assert services.cast_vote(alice, proposal.pk, "yes").power == ath(1_000)
    assert services.cast_vote(carol, proposal.pk, "yes").power == ath(500)
    with pytest.raises(services.GovernanceError, match="no ATH at this proposal's snapshot"):
        services.cast_vote(newcomer, proposal.pk, "yes")
    result = services.tally(proposal)
    assert result.yes == ath(1_500) and result.voters == 2


def test_a_deposit_after_the_snapshot_adds_no_power(holder, propose):
    erin = holder(ath(100))
    proposal = propose()
    fund(wallet(erin), ath(1_000_000))  # a flash deposit after the snapshot
    late = holder(ath(5_000_000))  # a whole wallet that appears afterwards
    ledger.move(wallet(erin), Bucket.AVAILABLE, Bucket.BONDED, ath(900_000), kind=TxKind.DELEGATE)

    assert services.power_of(erin, proposal) == ath(100)
    assert services.cast_vote(erin, proposal.pk, "no").power == ath(100)
    with pytest.raises(services.GovernanceError):
        services.cast_vote(late, proposal.pk, "no")
    assert Vote.objects.count() == 1
    assert services.tally(proposal).no == ath(100)


def test_power_counts_available_bonded_and_unbonding_but_not_escrow_or_collateral(holder, propose):
    frank = holder(ath(1_000))
    w = wallet(frank)
    ledger.move(w, Bucket.AVAILABLE, Bucket.BONDED, ath(300), kind=TxKind.DELEGATE)
    ledger.move(w, Bucket.BONDED, Bucket.UNBONDING, ath(100), kind=TxKind.UNDELEGATE)
    ledger.move(w, Bucket.AVAILABLE, Bucket.ESCROWED, ath(50), kind=TxKind.RENTAL_ESCROW)
    ledger.move(w, Bucket.AVAILABLE, Bucket.COLLATERAL, ath(20), kind=TxKind.COLLATERAL_LOCK)
    proposal = propose()
    assert services.cast_vote(frank, proposal.pk, "abstain").power == ath(1_000 - 50 - 20)


def test_the_snapshot_total_is_every_holder_at_that_height_and_no_module_account(holder, proposer, propose):
    _alice, bob = holder(ath(1_234)), holder(ath(66))
    proposal = propose()
    fund(wallet(bob), ath(10_000))  # after the snapshot
    # The proposer's own deposit left their balance before the snapshot.
    assert proposal.snapshot_power == ath(20_000 - 10_000 + 1_234 + 66)
    assert services.total_power_at(proposal.snapshot_height) == proposal.snapshot_power
    # The same figure, the slow way: each holder's checkpoint at the height.
    by_hand = sum(
        services.voting_power(a, proposal.snapshot_height) for a in Account.objects.filter(kind=AccountKind.USER)
    )
    assert by_hand == proposal.snapshot_power
    # And at any earlier height, e.g. before Bob was funded.
    bob_funded = wallet(bob).checkpoints.order_by("height").first().height
    assert services.total_power_at(bob_funded - 1) == ath(20_000 + 1_234)


def test_the_proposers_deposit_does_not_vote(proposer, propose):
    proposal = propose()
    assert services.power_of(proposer, proposal) == ath(10_000)


def test_a_vote_change_counts_once(holder, propose):
    alice = holder(ath(700))
    proposal = propose()
    services.cast_vote(alice, proposal.pk, "yes")
    services.cast_vote(alice, proposal.pk, "no")
    vote = services.cast_vote(alice, proposal.pk, "no_with_veto")
    services.cast_vote(alice, proposal.pk, "no_with_veto")  # the same again changes nothing
    assert Vote.objects.filter(proposal=proposal).count() == 1
    assert vote.changes == 2
    result = services.tally(proposal)
    assert (result.yes, result.no, result.no_with_veto, result.cast, result.voters) == (0, 0, ath(700), ath(700), 1)


def test_a_voter_needs_a_real_choice(holder, propose):
    alice = holder(ath(1))
    proposal = propose()
    with pytest.raises(services.GovernanceError, match="Vote yes, no"):
        services.cast_vote(alice, proposal.pk, "maybe")
    assert not Vote.objects.exists()

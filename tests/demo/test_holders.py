"""The demo's simulated token holders keep governance moving: a proposal
always open, votes with snapshot power arriving a few at a time."""

import random

from django.core.management import call_command

from apps.core import epochs
from apps.demo import holders, seed
from apps.governance import services as governance
from apps.governance.models import Proposal, ProposalStatus, Vote


def _small_network():
    seed.seed(nodes=6, n_checkers=4, n_delegators=16, history_epochs=1)


def test_holders_vote_on_every_open_proposal_with_their_snapshot_power(genesis):
    _small_network()
    open_ids = set(Proposal.objects.filter(status=ProposalStatus.VOTING).values_list("pk", flat=True))
    assert len(open_ids) == 3
    before = Vote.objects.count()
    sim = holders.Holders(random.Random(3))
    for _ in range(6):
        assert sim.step()["created"] is None  # one is open already
    new_votes = Vote.objects.filter(proposal_id__in=open_ids).order_by("-id")[: Vote.objects.count() - before]
    assert len(new_votes) >= 6
    for vote in new_votes:
        proposal = vote.proposal
        assert vote.power == governance.voting_power(vote.voter, proposal.snapshot_height) > 0
        assert vote.voter.owner.username.startswith(("operator-", "delegator-"))
    # One vote per holder per proposal, however many steps run.
    for pk in open_ids:
        voters = list(Vote.objects.filter(proposal_id=pk).values_list("voter_id", flat=True))
        assert len(voters) == len(set(voters))


def test_when_voting_ends_the_next_proposal_opens(genesis):
    _small_network()
    # Voting on the seeded three ends; the scheduler's tally closes them.
    Proposal.objects.update(voting_end_epoch=epochs.current_number())
    closed = governance.tally_due()
    assert len(closed) == 3 and not Proposal.objects.filter(status=ProposalStatus.VOTING).exists()

    result = holders.Holders(random.Random(5)).step()
    fresh = Proposal.objects.get(pk=result["created"])
    assert fresh.status == ProposalStatus.VOTING
    assert fresh.title == holders.PROPOSALS[3].title  # the next in turn
    assert fresh.created_by.username.startswith("delegator-")
    assert fresh.deposit == governance.parameters.get("min_deposit")
    assert result["votes"] == 1 and fresh.votes.count() == 1
    call_command("verify_ledger")

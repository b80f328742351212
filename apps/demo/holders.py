"""Simulated token holders, so governance in the demo moves like the rest of
the network: there is always a proposal open for voting, and seeded holders
(checker operators and delegators) vote on it a few at a time, so its tally
climbs towards quorum while you watch. When voting ends the scheduler
tallies it, and a passed parameter change takes effect from the next epoch.

Holders act through the governance services, exactly as the forms do; each
acts only with the power it held at the proposal's snapshot.
"""

import logging
import random
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model

from apps.accounts.services import open_wallet
from apps.core import parameters
from apps.core.amounts import ath
from apps.governance import services as governance
from apps.governance.models import Proposal, ProposalStatus, Vote

log = logging.getLogger(__name__)
User = get_user_model()


@dataclass(frozen=True)
class DemoProposal:
    kind: str
    title: str
    description: str
    lean: float  # how likely a holder votes yes
    extra: dict = field(default_factory=dict)


# Proposals the demo's holders bring, in turn. Parameter changes stay within
# what a real network might adopt; any that passes takes effect for real.
PROPOSALS = [
    DemoProposal(
        "text",
        "Add a Jakarta region",
        "Many providers in **Indonesia** ask for a region of their own. "
        "This signals support for adding `ap-jakarta` to the region list.",
        0.8,
    ),
    DemoProposal(
        "parameters",
        "Lower the protocol fee to 15%",
        "Rental volume is growing; a lower fee makes the network more competitive "
        "while the community pool stays funded.",
        0.65,
        {"changes": {"protocol_fee": 150_000}},
    ),
    DemoProposal(
        "spend",
        "Fund an open-source checker client",
        "Pay 250,000 ATH from the community pool to the team building an independent checker implementation.",
        0.7,
        {"amount": ath(250_000), "recipient": "operator"},
    ),
    DemoProposal(
        "parameters",
        "Tighten the SLA latency limit to 120 ms",
        "Renters of inference workloads ask for snappier nodes. Nodes above 120 ms would be in breach.",
        0.35,
        {"changes": {"sla_max_latency_ms": 120}},
    ),
    DemoProposal(
        "text",
        "Publish a quarterly network report",
        "The community pool pays for an independent report on uptime, rewards and slashes each quarter.",
        0.75,
    ),
    DemoProposal(
        "parameters",
        "Raise the protocol fee to 25%",
        "More fees for the community pool to fund ecosystem grants.",
        0.25,
        {"changes": {"protocol_fee": 250_000}},
    ),
]
CHOICES_YES = ["yes"]
CHOICES_NO = ["no", "no", "no", "abstain", "no_with_veto"]


def propose(proposal: DemoProposal, proposer) -> Proposal:
    """Create and open ``proposal`` with the minimum deposit."""
    extra = dict(proposal.extra)
    recipient = extra.pop("recipient", None)
    if recipient:
        extra["recipient_address"] = open_wallet(User.objects.get(username=recipient)).address
    return governance.create_proposal(
        proposer,
        kind=proposal.kind,
        title=proposal.title,
        description=proposal.description,
        deposit=parameters.get("min_deposit"),
        **extra,
    )


def lean_of(title: str) -> float:
    return next((p.lean for p in PROPOSALS if p.title == title), 0.5)


def choose(rng: random.Random, lean: float) -> str:
    return rng.choice(CHOICES_YES if rng.random() < lean else CHOICES_NO)


class Holders:
    """One step of the holders' activity per call of :meth:`step`."""

    def __init__(self, rng: random.Random | None = None):
        self.rng = rng or random.Random()

    def _people(self, prefix: str):
        return list(User.objects.filter(username__startswith=prefix).order_by("id"))

    def ensure_open_proposal(self) -> Proposal | None:
        """Bring the next demo proposal when none is open for voting."""
        if Proposal.objects.filter(status=ProposalStatus.VOTING).exists():
            return None
        made = Proposal.objects.count()
        deposit = parameters.get("min_deposit")
        proposers = [p for p in self._people("delegator-") if open_wallet(p).available >= deposit]
        if not proposers:
            return None
        nxt = PROPOSALS[made % len(PROPOSALS)]
        return propose(nxt, self.rng.choice(proposers))

    def vote_once(self, proposal: Proposal) -> Vote | None:
        """One holder who has not voted yet votes on ``proposal``: an
        operator half the time (they hold most of the stake), else a
        delegator. Holders with no power at the snapshot are skipped."""
        voted = set(Vote.objects.filter(proposal=proposal).values_list("voter__owner_id", flat=True))
        prefix = "operator-" if self.rng.random() < 0.5 else "delegator-"
        pool = [u for u in self._people(prefix) if u.pk not in voted]
        self.rng.shuffle(pool)
        for person in pool[:5]:
            try:
                return governance.cast_vote(person, proposal.pk, choose(self.rng, lean_of(proposal.title)))
            except governance.GovernanceError:
                continue  # no power at the snapshot, or voting just ended
        return None

    def step(self) -> dict:
        created = self.ensure_open_proposal()
        votes = 0
        for proposal in Proposal.objects.filter(status=ProposalStatus.VOTING).order_by("id"):
            if self.vote_once(proposal):
                votes += 1
        return {"created": created.pk if created else None, "votes": votes}

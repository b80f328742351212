"""Live tallies: a vote or a status change records a hint for the proposal's
Channels group in its own transaction (the outbox, ``apps/core/outbox.py``);
the web server's relay publishes it once that commits, and
``consumers.ProposalConsumer`` re-renders and pushes the tally.

A hint, never the data: a page re-renders from the database.
"""

from apps.core import outbox


def proposal_group(proposal_id: int) -> str:
    return f"governance-proposal-{proposal_id}"


def proposal_changed(proposal_id: int) -> None:
    outbox.write([(proposal_group(proposal_id), {"type": "tally.changed"})])

"""Live tallies: after a vote or a status change commits, hint the proposal's
Channels group; ``consumers.ProposalConsumer`` re-renders and pushes it.

A hint, never the data: a lost message costs a page one refresh.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


def proposal_group(proposal_id: int) -> str:
    return f"governance-proposal-{proposal_id}"


def proposal_changed(proposal_id: int) -> None:
    def send():
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(proposal_group(proposal_id), {"type": "tally.changed"})
        except Exception:  # the vote has committed; a missed refresh is harmless
            log.warning("live update for proposal %s failed", proposal_id, exc_info=True)

    transaction.on_commit(send)

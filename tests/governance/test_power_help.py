"""A holder with no voting power on a proposal is told why, with the ledger
heights, and what to do; an open vote shows its countdown."""

from apps.accounts.services import open_wallet
from apps.core.amounts import ath

from ..factories import UserFactory, fund


def test_a_new_sign_up_is_told_why_their_power_is_zero(client, propose):
    proposal = propose()
    newcomer = UserFactory()
    client.force_login(newcomer)
    body = client.get(proposal.get_absolute_url()).content.decode()
    assert 'data-testid="power-help"' in body and "Why is my voting power 0?" in body
    assert (
        f"Your wallet has never held ATH; this proposal's snapshot is ledger height #{proposal.snapshot_height}."
        in body
    )
    assert 'data-testid="countdown"' in body and "ends in" in body

    fund(open_wallet(newcomer), ath(500))
    body = client.get(proposal.get_absolute_url()).content.decode()
    first = open_wallet(newcomer).entries.order_by("tx__height").first().tx.height
    assert (
        f"Your first ATH arrived at ledger height #{first}, "
        f"after this proposal's snapshot at #{proposal.snapshot_height}." in body
    )
    assert "Every proposal submitted from now on counts your 500 ATH." in body


def test_a_holder_at_the_snapshot_sees_no_explanation(client, propose, proposer):
    proposal = propose()
    client.force_login(proposer)
    body = client.get(proposal.get_absolute_url()).content.decode()
    assert "power-help" not in body and 'data-testid="vote-yes"' in body

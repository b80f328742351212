"""A vote's epochs are named one way on every page: the list, the proposal
page and its timeline all give the last epoch votes are taken in (voting
closes as ``voting_end_epoch`` starts), as rentals name their last epoch."""

from django.urls import reverse


def test_the_list_and_the_proposal_name_the_same_last_voting_epoch(client, propose):
    proposal = propose()
    start, last = proposal.voting_start_epoch, proposal.voting_end_epoch - 1
    listing = client.get(reverse("governance:index")).content.decode()
    page = client.get(proposal.get_absolute_url()).content.decode()
    assert f"epochs {start}–{last}" in listing
    assert f"epochs {start}–{last}" in page
    assert f'data-testid="voting-ends">after epoch {last}<' in page
    assert f"open through epoch {last}" in page  # the timeline's opening note
    for body in (listing, page):
        assert f"–{proposal.voting_end_epoch}" not in body
        assert f"epoch {proposal.voting_end_epoch}<" not in body
        assert "until the start of epoch" not in body

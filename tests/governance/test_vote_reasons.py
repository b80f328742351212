"""A voter may say why; the reason is public with the vote, kept when a
later change of choice gives none, and bounded in length."""

from django.urls import reverse

from apps.governance import services
from apps.governance.models import Vote

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_a_vote_carries_its_reason_onto_the_page(client, propose, proposer):
    proposal = propose()
    client.force_login(proposer)
    r = client.post(
        reverse("governance:vote", args=[proposal.pk]), {"choice": "yes", "reason": " More GPUs near users. "}, **HTMX
    )
    assert r.status_code == 200
    vote = Vote.objects.get()
    assert (vote.choice, vote.reason) == ("yes", "More GPUs near users.")
    page = client.get(proposal.get_absolute_url()).content.decode()
    assert "“More GPUs near users.”" in page and 'data-testid="vote-reason"' in page

    services.cast_vote(proposer, proposal.pk, "no")  # a change without a reason keeps the old one
    vote.refresh_from_db()
    assert (vote.choice, vote.reason, vote.changes) == ("no", "More GPUs near users.", 1)


def test_a_reason_too_long_is_refused_and_nothing_recorded(client, propose, proposer):
    proposal = propose()
    client.force_login(proposer)
    r = client.post(reverse("governance:vote", args=[proposal.pk]), {"choice": "yes", "reason": "x" * 281}, **HTMX)
    assert r.status_code == 400 and "Keep the reason to 280 characters." in r.content.decode()
    assert not Vote.objects.exists()

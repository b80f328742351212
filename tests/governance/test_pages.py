"""The governance pages: safe Markdown, permissions on every mutating page,
form errors that change nothing, voting through htmx."""

import re

import pytest
from django.urls import reverse

from apps.core import ledger
from apps.core.amounts import ath
from apps.core.models import ModuleAccount
from apps.governance import services
from apps.governance.models import Proposal, ProposalStatus, Vote

from .conftest import end_voting, wallet

HTMX = {"HTTP_HX_REQUEST": "true"}


def text_form(**overrides):
    return {"title": "Fund a GPU school", "description": "Teach **CUDA**.", "deposit": "10000", **overrides}


def test_a_script_in_a_proposal_renders_as_text(client, propose):
    proposal = propose(
        title="<script>alert('title')</script>",
        description="Hello <script>alert('x')</script> **bold** [click](javascript:alert(1)) <img "
        "src=x onerror=alert(2)>",
    )
    page = client.get(proposal.get_absolute_url()).content.decode()
    assert (
        "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page or "&lt;script&gt;alert('x')&lt;/script&gt;" in page
    )
    assert "<strong>bold</strong>" in page
    assert "alert('x')</script>" not in page and "alert('title')</script>" not in page
    assert "javascript:" not in page and "<img" not in page
    # Every script the page loads carries the CSP nonce.
    for tag in re.findall(r"<script\b[^>]*>", page):
        assert "nonce=" in tag, tag


def test_the_list_filters_by_status(client, holder, propose):
    alice = holder(ath(50_000))
    open_one = propose(title="Still open")
    closed = propose(title="Already decided")
    services.cast_vote(alice, closed.pk, "yes")
    end_voting(closed)
    services.tally_due()
    page = client.get(reverse("governance:index")).content.decode()
    assert "Still open" in page and "Already decided" in page
    voting = client.get(reverse("governance:index"), {"status": "voting"}).content.decode()
    assert "Still open" in voting and "Already decided" not in voting
    passed = client.get(reverse("governance:index"), {"status": "passed"}, **HTMX).content.decode()
    assert 'id="proposal-list"' in passed and "Already decided" in passed and "Still open" not in passed
    assert open_one.pk != closed.pk


def test_the_proposal_page_shows_tally_voters_and_timeline(client, holder, propose):
    alice = holder(ath(5_000), username="alice")
    proposal = propose(kind="parameters", changes={"protocol_fee": 250_000})
    services.cast_vote(alice, proposal.pk, "yes")
    page = client.get(proposal.get_absolute_url()).content.decode()
    assert 'data-testid="tally-yes">5,000 ATH' in page
    # Voters are shown by address (or a public name they chose), never by login name.
    assert alice.wallet.short_address in page and "alice" not in page
    assert "Voting opened" in page and "Created, deposit locked" in page
    assert "25%" in page and "20%" in page  # proposed and current protocol fee
    assert f'ws-connect="/ws/governance/{proposal.pk}/' in page
    assert "vendor/plotly.min.js" in page


@pytest.mark.parametrize("url_name, args", [("governance:new", []), ("governance:create", ["text"])])
def test_anonymous_visitors_are_sent_to_log_in(client, genesis, url_name, args):
    response = client.get(reverse(url_name, args=args))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_anonymous_posts_change_nothing(client, propose):
    proposal = propose()
    for kind in ("text", "parameters", "spend"):
        response = client.post(reverse("governance:create", args=[kind]), text_form())
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    response = client.post(reverse("governance:vote", args=[proposal.pk]), {"choice": "yes"}, **HTMX)
    assert response.status_code == 302
    assert Proposal.objects.count() == 1 and not Vote.objects.exists()


def test_voting_needs_post(logged_in, propose):
    proposal = propose()
    assert logged_in.get(reverse("governance:vote", args=[proposal.pk])).status_code == 405


def test_a_stranger_without_power_cannot_vote(client, holder, propose):
    proposal = propose()
    stranger = holder(0)
    client.force_login(stranger)
    response = client.post(reverse("governance:vote", args=[proposal.pk]), {"choice": "yes"}, **HTMX)
    assert response.status_code == 400
    assert "no ATH at this proposal" in response.content.decode()
    assert not Vote.objects.exists()
    page = client.get(proposal.get_absolute_url()).content.decode()
    assert "you have no vote on it" in page and 'data-testid="vote-yes"' not in page


@pytest.fixture
def voting(client, holder, propose):
    """A proposal open for voting and the URL to vote on it, ``client``
    logged in as a holder of 3,000 ATH."""
    alice = holder(ath(3_000))
    proposal = propose()
    client.force_login(alice)
    return proposal, reverse("governance:vote", args=[proposal.pk])


def test_a_holder_votes_and_changes_the_vote_with_htmx(client, voting):
    _, url = voting
    response = client.post(url, {"choice": "yes"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and 'id="vote-panel"' in html
    assert 'id="tally" class="card"' in html and 'hx-swap-oob="true"' in html
    assert 'data-testid="tally-yes">3,000 ATH' in html
    response = client.post(url, {"choice": "no"}, **HTMX)
    html = response.content.decode()
    assert 'data-testid="tally-yes">0 ATH' in html and 'data-testid="tally-no">3,000 ATH' in html
    assert Vote.objects.get().choice == "no"
    # Without htmx: a redirect and a message.
    response = client.post(url, {"choice": "abstain"})
    assert response.status_code == 302 and Vote.objects.get().choice == "abstain"


def test_bad_votes_are_refused_with_a_message(client, voting):
    proposal, url = voting
    response = client.post(url, {"choice": "maybe"}, **HTMX)
    assert response.status_code == 400 and "Vote yes, no" in response.content.decode()
    end_voting(proposal)
    response = client.post(url, {"choice": "yes"}, **HTMX)
    assert response.status_code == 400 and "has ended" in response.content.decode()
    assert not Vote.objects.exists()
    assert client.post(reverse("governance:vote", args=[999]), {"choice": "yes"}).status_code == 404


def test_creating_a_text_proposal_through_the_form(client, proposer):
    client.force_login(proposer)
    page = client.get(reverse("governance:create", args=["text"])).content.decode()
    assert "At least 10,000 ATH" in page and "20,000 ATH" in page
    response = client.post(reverse("governance:create", args=["text"]), text_form())
    proposal = Proposal.objects.get()
    assert response.status_code == 302 and response["Location"] == proposal.get_absolute_url()
    assert proposal.status == ProposalStatus.VOTING and wallet(proposer).available == ath(10_000)


@pytest.mark.parametrize(
    "data, message",
    [
        (text_form(title=""), "This field is required"),
        (text_form(deposit="5000"), "minimum deposit is 10,000 ATH"),
        (text_form(deposit="abc"), "Enter a number"),
        (text_form(deposit="30000"), "you have 20,000 ATH"),
    ],
)
def test_bad_text_proposals_get_form_errors_and_change_nothing(client, proposer, data, message):
    client.force_login(proposer)
    response = client.post(reverse("governance:create", args=["text"]), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Proposal.objects.exists() and wallet(proposer).available == ath(20_000)


def test_the_parameter_form_shows_current_values_and_bounds(client, proposer):
    client.force_login(proposer)
    page = client.get(reverse("governance:create", args=["parameters"])).content.decode()
    row = re.search(r'<tr data-param="protocol_fee".*?</tr>', page, re.S).group(0)
    assert "20%" in row and "0% … 50%" in row
    assert 'data-param="epoch_seconds"' not in page  # not governable


@pytest.mark.parametrize(
    "values, message, status",
    [
        ({"p-param_protocol_fee": "50.5"}, "Must be between 0% and 50%.", 400),
        ({"p-param_protocol_fee": "abc"}, "Enter a number", 400),
        ({"p-param_protocol_fee": "12.00001"}, "0.0001%", 400),
        ({"p-param_emission_per_epoch": "1.0000001"}, "six decimals", 400),
        ({"p-param_replication": "2.5"}, "whole number", 400),
        ({}, "at least one parameter", 400),
        ({"p-param_emission_provider_share": "60"}, "must add up to 100%", 400),
        ({"p-param_protocol_fee": "25", "p-param_min_vram_gb": "24"}, None, 302),
    ],
)
def test_the_parameter_form_enforces_bounds(client, proposer, values, message, status):
    client.force_login(proposer)
    response = client.post(reverse("governance:create", args=["parameters"]), {**text_form(), **values})
    assert response.status_code == status
    if message:
        assert message in response.content.decode()
        assert not Proposal.objects.exists() and wallet(proposer).available == ath(20_000)
    else:
        proposal = Proposal.objects.get()
        assert {c.key: c.value for c in proposal.changes.all()} == {"protocol_fee": 250_000, "min_vram_gb": 24}


def test_the_spend_form_shows_the_pool_and_refuses_bad_recipients(client, holder, proposer):
    grantee = holder(0)
    client.force_login(proposer)
    url = reverse("governance:create", args=["spend"])
    page = client.get(url).content.decode()
    assert 'data-testid="pool-balance">10,500,000,000 ATH' in page
    response = client.post(url, text_form(recipient="ath1nobody", amount="5"))
    assert response.status_code == 400 and "No wallet has that recipient address" in response.content.decode()
    response = client.post(url, text_form(recipient=wallet(grantee).address, amount="99999999999"))
    assert response.status_code == 400 and "community pool holds" in response.content.decode()
    assert not Proposal.objects.exists()
    response = client.post(url, text_form(recipient=wallet(grantee).address, amount="2500.5"))
    assert response.status_code == 302 and Proposal.objects.get().amount == 2_500_500_000
    assert ledger.module_account(ModuleAccount.COMMUNITY_POOL).available == ath(10_500_000_000)


def test_an_unknown_kind_is_404(logged_in):
    assert logged_in.get("/governance/new/coup/").status_code == 404

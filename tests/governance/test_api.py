"""Governance over REST: public reads, holder-only writes that always act as
the caller, 400 with a message on bad input, exact amounts as strings."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.core.amounts import ath
from apps.core.parameters import pct
from apps.governance.models import Proposal, Vote

from .conftest import end_voting, wallet


@pytest.fixture
def api():
    return APIClient()


def body(**overrides):
    return {"kind": "text", "title": "Signal", "description": "Say *yes*.", "deposit": str(ath(10_000)), **overrides}


def test_reading_is_public(api, propose):
    proposal = propose(kind="parameters", changes={"protocol_fee": pct(25)})
    listing = api.get(reverse("api:governance-proposals")).json()
    assert listing["count"] == 1 and listing["results"][0]["deposit"] == str(ath(10_000))
    detail = api.get(reverse("api:governance-proposal", args=[proposal.pk])).json()
    assert detail["changes"] == [
        {"key": "protocol_fee", "label": "Protocol fee on rentals", "unit": "ppm", "value": "250000", "display": "25%"}
    ]
    assert detail["tally"]["cast"] == "0" and detail["tally"]["total_power"] == str(ath(10_000))
    assert [e["kind"] for e in detail["events"]] == ["created", "voting"]
    assert api.get(reverse("api:governance-votes", args=[proposal.pk])).json()["count"] == 0
    assert api.get(reverse("api:governance-proposals"), {"status": "bogus"}).status_code == 400
    assert api.get(reverse("api:governance-proposals"), {"status": "voting"}).json()["count"] == 1


def test_anonymous_callers_cannot_create_or_vote(api, propose):
    proposal = propose()
    assert api.post(reverse("api:governance-proposals"), body(), format="json").status_code == 403
    assert api.post(reverse("api:governance-vote", args=[proposal.pk]), {"choice": "yes"}).status_code == 403
    assert api.get(reverse("api:governance-vote", args=[proposal.pk])).status_code == 403
    assert Proposal.objects.count() == 1 and not Vote.objects.exists()


def test_create_vote_and_change_the_vote(api, holder, proposer):
    api.force_authenticate(proposer)
    response = api.post(reverse("api:governance-proposals"), body(), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "voting" and data["proposer"] == wallet(proposer).address
    pk = data["id"]
    url = reverse("api:governance-vote", args=[pk])
    assert api.get(url).json() == {"proposal": pk, "power": str(ath(10_000)), "vote": None}
    assert api.post(url, {"choice": "yes"}, format="json").json()["power"] == str(ath(10_000))
    changed = api.post(url, {"choice": "no"}, format="json").json()
    assert changed["choice"] == "no" and changed["changes"] == 1
    tally = api.get(reverse("api:governance-proposal", args=[pk])).json()["tally"]
    assert (tally["yes"], tally["no"], tally["voters"]) == ("0", str(ath(10_000)), 1)


def test_nobody_acts_for_another(api, holder, proposer, propose):
    alice = holder(ath(1_000))
    proposal = propose()
    api.force_authenticate(alice)
    # Fields naming someone else are not part of the API and change nothing.
    response = api.post(
        reverse("api:governance-vote", args=[proposal.pk]),
        {"choice": "yes", "voter": wallet(proposer).address, "power": str(ath(10**9))},
        format="json",
    )
    assert response.status_code == 200
    vote = Vote.objects.get()
    assert vote.voter == wallet(alice) and vote.power == ath(1_000)
    response = api.post(
        reverse("api:governance-proposals"),
        body(deposit=str(ath(10_000)), proposer=wallet(proposer).address),
        format="json",
    )
    # Alice holds 1,000 ATH: the deposit is refused, not taken from the proposer.
    assert response.status_code == 400 and "you have 1,000 ATH" in response.json()["detail"]
    assert Proposal.objects.count() == 1 and wallet(proposer).available == ath(10_000)


@pytest.mark.parametrize(
    "payload, field, message",
    [
        (body(kind="parameters", changes={"protocol_fee": str(pct(60))}), "detail", "between 0% and 50%"),
        (body(kind="parameters", changes={"epoch_seconds": "30"}), "detail", "cannot be changed by governance"),
        (body(kind="parameters", changes={"protocol_fee": "twenty"}), "changes", "whole number"),
        # Each passed str.isdigit() and then crashed int() (a 500).
        (body(kind="parameters", changes={"protocol_fee": "--5"}), "changes", "whole number"),
        (body(kind="parameters", changes={"protocol_fee": "²"}), "changes", "whole number"),
        (body(kind="parameters", changes={"protocol_fee": "9" * 5_000}), "changes", "out of range"),
        (body(kind="parameters"), "changes", "at least one parameter"),
        (body(kind="spend", amount="5"), "recipient", "needs a recipient"),
        (body(kind="spend", recipient="ath1nobody", amount="5"), "detail", "No wallet has that"),
        (body(kind="vote-buying"), "kind", "not a valid choice"),
        (body(deposit="1.5"), "deposit", "positive whole number"),
        (body(deposit=str(ath(9_999))), "detail", "minimum deposit is 10,000 ATH"),
        (body(deposit=str(ath(30_000))), "detail", "you have 20,000 ATH"),
        (body(title=""), "title", "may not be blank"),
    ],
)
def test_bad_input_gets_400_with_a_message_and_changes_nothing(api, proposer, payload, field, message):
    api.force_authenticate(proposer)
    response = api.post(reverse("api:governance-proposals"), payload, format="json")
    assert response.status_code == 400
    assert message in str(response.json()[field]), response.json()
    assert not Proposal.objects.exists() and wallet(proposer).available == ath(20_000)


def test_bad_votes_get_400(api, holder, propose):
    proposal = propose()
    stranger = holder(0)
    api.force_authenticate(stranger)
    url = reverse("api:governance-vote", args=[proposal.pk])
    assert "no ATH at this proposal" in api.post(url, {"choice": "yes"}, format="json").json()["detail"]
    assert api.post(url, {"choice": "perhaps"}, format="json").status_code == 400
    assert api.post(reverse("api:governance-vote", args=[404]), {"choice": "yes"}, format="json").status_code == 404
    end_voting(proposal)
    api.force_authenticate(proposal.proposer.owner)
    response = api.post(url, {"choice": "yes"}, format="json")
    assert response.status_code == 400 and "has ended" in response.json()["detail"]
    assert not Vote.objects.exists()


def test_the_schema_builds(api, genesis):
    assert api.get("/api/schema/").status_code == 200

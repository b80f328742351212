"""Forms refuse bad input with a clear message and change nothing; every
mutating page and endpoint is closed to anonymous visitors and strangers."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.services import open_wallet
from apps.core.amounts import ath
from apps.core.models import Account, CheckerNode
from apps.staking import services
from apps.staking.models import Delegation


def snapshot():
    return (
        sorted(Account.objects.values_list("pk", "available", "bonded", "unbonding")),
        sorted(Delegation.objects.values_list("pk", "amount")),
        sorted(CheckerNode.objects.values_list("pk", "status", "commission_rate", "total_stake")),
    )


def test_list_detail_and_my_page_render(client, checker, funded):
    services.delegate(funded, checker, ath(100), epoch=0)
    page = client.get(reverse("staking:index") + "?sort=commission&status=active&q=alp")
    assert page.status_code == 200 and b"Alpha" in page.content
    partial = client.get(
        reverse("staking:index") + "?status=jailed", headers={"HX-Request": "true", "HX-Target": "checker-table"}
    )
    assert b"No checker matches" in partial.content and b"<html" not in partial.content
    assert client.get(reverse("staking:checker", args=[checker.pk])).status_code == 200
    client.force_login(funded)
    me = client.get(reverse("staking:me"))
    assert me.status_code == 200 and b"Alpha" in me.content and b"staking-chart-data" in me.content
    assert b"vendor/plotly.min.js" in me.content and b'nonce="' in me.content


@pytest.mark.parametrize(
    "amount, message",
    [
        ("0.5", "The minimum delegation is 1 ATH."),
        ("5000", "You have 1,000 ATH available; you cannot delegate 5,000 ATH."),
        ("abc", "Enter a number, like 12.5."),
    ],
)
def test_delegate_form_refusals(client, checker, funded, amount, message):
    client.force_login(funded)
    before = snapshot()
    r = client.post(reverse("staking:delegate"), {"checker": checker.pk, "amount": amount})
    assert r.status_code == 400
    assert message in r.content.decode()
    assert snapshot() == before


def test_delegate_to_jailed_or_inactive_checker_is_refused(client, checker, funded, operator):
    client.force_login(funded)
    services.jail(checker, "test", epoch=0, duration=3)
    before = snapshot()
    r = client.post(reverse("staking:delegate"), {"checker": checker.pk, "amount": "10"})
    assert r.status_code == 400 and "Alpha is jailed (until epoch 3); you cannot delegate to it." in r.content.decode()
    assert snapshot() == before
    services.unjail(operator, checker, epoch=3)
    services.undelegate(operator, checker, ath(1), epoch=3)  # self-stake 9,999: inactive
    before = snapshot()
    r = client.post(reverse("staking:delegate"), {"checker": checker.pk, "amount": "10"})
    assert "Alpha is inactive (its self-stake is below the minimum)" in r.content.decode()
    assert snapshot() == before


def test_undelegate_more_than_delegated_is_refused(client, checker, funded):
    services.delegate(funded, checker, ath(10), epoch=0)
    client.force_login(funded)
    before = snapshot()
    r = client.post(reverse("staking:undelegate"), {"checker": checker.pk, "amount": "11"})
    assert r.status_code == 400
    assert "You have 10 ATH delegated to Alpha; you cannot move 11 ATH." in r.content.decode()
    assert snapshot() == before


def test_commission_change_above_limit_is_refused(client, checker, operator):
    client.force_login(operator)
    before = snapshot()
    r = client.post(reverse("staking:commission", args=[checker.pk]), {"rate": "7"})
    assert r.status_code == 400
    assert "The commission can change by at most 1% per epoch" in r.content.decode()
    assert snapshot() == before
    r = client.post(reverse("staking:commission", args=[checker.pk]), {"rate": "5.5"})
    assert r.status_code == 302
    checker.refresh_from_db()
    assert checker.commission_rate == 55_000


def test_delegate_and_undelegate_through_the_forms(client, checker, funded):
    client.force_login(funded)
    r = client.post(reverse("staking:delegate"), {"checker": checker.pk, "amount": "100"})
    assert r.status_code == 302 and r.url == reverse("staking:me")
    assert open_wallet(funded).bonded == ath(100)
    r = client.post(reverse("staking:undelegate"), {"checker": checker.pk, "amount": "40"})
    assert r.status_code == 302
    wallet = open_wallet(funded)
    assert (wallet.bonded, wallet.unbonding) == (ath(60), ath(40))


# --- permissions: pages -------------------------------------------------------


def page_actions(checker):
    return [
        (reverse("staking:delegate"), {"checker": checker.pk, "amount": "10"}),
        (reverse("staking:undelegate"), {"checker": checker.pk, "amount": "10"}),
        (reverse("staking:redelegate"), {"src": checker.pk, "dst": checker.pk, "amount": "10"}),
        (reverse("staking:claim"), {}),
        (
            reverse("staking:activate"),
            {"name": "X", "self_stake": "10000", "commission_rate": "5", "commission_max_rate": "20"},
        ),
        (reverse("staking:commission", args=[checker.pk]), {"rate": "5.5"}),
        (reverse("staking:unjail", args=[checker.pk]), {}),
    ]


def test_anonymous_cannot_act_on_any_page(client, checker):
    before = snapshot()
    for url, data in page_actions(checker):
        r = client.post(url, data)
        assert r.status_code == 302 and "/accounts/login/" in r.url, url
    for url in (reverse("staking:me"), reverse("staking:operator")):
        assert client.get(url).status_code == 302
    assert snapshot() == before


@pytest.fixture
def delegated_and_jailed(checker, funded):
    """``funded`` has 10 ATH delegated to ``checker``, which is jailed (and
    may unjail at once)."""
    services.delegate(funded, checker, ath(10), epoch=0)
    services.jail(checker, "test", epoch=0, duration=0)


def test_a_stranger_cannot_run_someone_elses_checker_or_touch_their_delegation(
    client, checker, delegated_and_jailed, other_user
):
    client.force_login(other_user)
    before = snapshot()
    assert client.post(reverse("staking:commission", args=[checker.pk]), {"rate": "5.5"}).status_code == 403
    assert client.post(reverse("staking:unjail", args=[checker.pk])).status_code == 403
    r = client.post(reverse("staking:undelegate"), {"checker": checker.pk, "amount": "10"})
    assert r.status_code == 400 and "You have nothing delegated to Alpha." in r.content.decode()
    assert snapshot() == before


def test_the_operator_unjails_through_the_page(client, checker, operator):
    services.jail(checker, "test", epoch=0, duration=0)
    client.force_login(operator)
    assert client.post(reverse("staking:unjail", args=[checker.pk])).status_code == 302
    checker.refresh_from_db()
    assert checker.status == "active"


# --- permissions and behaviour: API ---------------------------------------------


@pytest.fixture
def api():
    return APIClient()


def api_actions(checker):
    return [
        ("api:staking-api:delegate", [], {"checker": checker.pk, "amount": str(ath(10))}),
        ("api:staking-api:undelegate", [], {"checker": checker.pk, "amount": str(ath(10))}),
        ("api:staking-api:redelegate", [], {"src": checker.pk, "dst": checker.pk, "amount": str(ath(10))}),
        ("api:staking-api:claim", [], {}),
        (
            "api:staking-api:checkers",
            [],
            {"name": "X", "self_stake": str(ath(10_000)), "commission_rate_ppm": 1, "commission_max_rate_ppm": 2},
        ),
        ("api:staking-api:commission", [checker.pk], {"rate_ppm": 55_000}),
        ("api:staking-api:unjail", [checker.pk], {}),
    ]


def test_api_anonymous_is_refused_everywhere(api, checker):
    before = snapshot()
    for name, args, data in api_actions(checker):
        assert api.post(reverse(name, args=args), data, format="json").status_code == 403, name
    assert api.get(reverse("api:staking-api:me")).status_code == 403
    assert snapshot() == before


def test_api_stranger_cannot_act_for_the_operator_or_the_delegator(api, checker, delegated_and_jailed, other_user):
    api.force_authenticate(other_user)
    before = snapshot()
    assert (
        api.post(
            reverse("api:staking-api:commission", args=[checker.pk]), {"rate_ppm": 55_000}, format="json"
        ).status_code
        == 403
    )
    assert api.post(reverse("api:staking-api:unjail", args=[checker.pk]), {}, format="json").status_code == 403
    r = api.post(reverse("api:staking-api:undelegate"), {"checker": checker.pk, "amount": str(ath(10))}, format="json")
    assert r.status_code == 400 and r.json()["detail"] == "You have nothing delegated to Alpha."
    assert snapshot() == before


def test_api_owner_flow(api, checker, funded, operator):
    api.force_authenticate(funded)
    r = api.post(reverse("api:staking-api:delegate"), {"checker": checker.pk, "amount": str(ath(100))}, format="json")
    assert r.status_code == 201 and r.json()[0]["amount"] == str(ath(100))
    r = api.post(reverse("api:staking-api:delegate"), {"checker": checker.pk, "amount": "999999"}, format="json")
    assert r.status_code == 400 and r.json()["detail"] == "The minimum delegation is 1 ATH."
    r = api.post(reverse("api:staking-api:undelegate"), {"checker": checker.pk, "amount": str(ath(30))}, format="json")
    assert r.status_code == 201 and r.json()["amount"] == str(ath(30)) and r.json()["maturity_epoch"] >= 7
    me = api.get(reverse("api:staking-api:me")).json()
    assert me["positions"][0]["amount"] == str(ath(70)) and me["unbonding"][0]["amount"] == str(ath(30))
    listing = api.get(reverse("api:staking-api:checkers")).json()
    assert listing[0]["name"] == "Alpha" and listing[0]["total_stake"] == str(ath(10_070))
    api.force_authenticate(operator)
    r = api.post(reverse("api:staking-api:commission", args=[checker.pk]), {"rate_ppm": 55_000}, format="json")
    assert r.status_code == 200 and r.json()["commission_rate_ppm"] == 55_000
    r = api.post(reverse("api:staking-api:commission", args=[checker.pk]), {"rate_ppm": 56_000}, format="json")
    assert r.status_code == 400 and "already changed" in r.json()["detail"]

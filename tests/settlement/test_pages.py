"""The same settled numbers on the pages and in the API, with reasons."""

from django.urls import reverse

from apps.core.amounts import ath
from apps.settlement import services

from .conftest import report, set_epoch


def settle_example(network):
    a, b, _ = network["nodes"]
    for checker in network["checkers"]:
        report(6, a, checker)
        report(6, b, checker)
    set_epoch(7)
    return services.settle(6)


def test_pages_and_api_agree(client, small_network):
    settle_example(small_network)
    a, b, _ = small_network["nodes"]
    body = client.get(reverse("settlement:index")).content.decode()
    assert "1,000 ATH" in body and 'href="/settlement/epoch/6/"' in body
    detail = client.get(reverse("settlement:epoch", args=[6])).content.decode()
    assert "Provider capacity reward" in detail and "+350 ATH" in detail and "A: weight 10 x uptime 100.00%" in detail
    data = client.get("/api/settlement/epochs/6/").json()
    assert data["emission"] == str(ath(1_000)) and data["provider_emission"] == str(ath(700))
    lines = client.get("/api/settlement/epochs/6/lines/").json()["results"]
    provider_lines = [line for line in lines if line["kind"] == "provider_reward"]
    assert sorted(line["amount"] for line in provider_lines) == [str(ath(350))] * 2
    assert client.get("/api/settlement/epochs/99/lines/").status_code == 404


def test_a_provider_and_a_delegator_reach_their_own_lines(client, small_network):
    settle_example(small_network)
    a, b, _ = small_network["nodes"]
    assert client.get(reverse("settlement:mine")).status_code == 302  # login first
    client.force_login(a.provider)
    body = client.get(reverse("settlement:mine")).content.decode()
    assert "A: weight 10" in body and "B: weight" not in body
    mine = client.get("/api/settlement/mine/").json()["results"]
    assert [line["amount"] for line in mine if line["kind"] == "provider_reward"] == [str(ath(350))]
    operator = small_network["checkers"][0].operator
    client.force_login(operator)
    body = client.get(reverse("settlement:mine")).content.decode()
    assert "checker-0: 2 correct reports" in body and "checker-1" not in body

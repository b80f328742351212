"""The marketplace REST API: every action, and nobody touches another
person's node, rental or funds."""

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import open_wallet
from apps.core.amounts import ath
from apps.core.models import GpuNode, LedgerTransaction
from apps.core.verify import verify_ledger
from apps.marketplace.models import Rental, RentalStatus

from ..factories import fund, make_node
from .conftest import consensus, online

IMAGE = "nvcr.io/nvidia/pytorch:24.08-py3"


@pytest.fixture
def api():
    return APIClient()


def test_catalogue_and_match_are_public(api, clock, node):
    r = api.get("/api/marketplace/nodes/", {"gpu": "h100-80gb", "max_price": "3"})
    assert r.status_code == 200 and [n["name"] for n in r.json()["results"]] == ["fra-h100"]
    assert r.json()["results"][0]["price_per_gpu_hour"] == "2000000"
    assert api.get(f"/api/marketplace/nodes/{node.pk}/").json()["collateral"] == str(ath(10_000))
    r = api.post(
        "/api/marketplace/match/",
        {"gpu_model": "h100-80gb", "region": "eu-central", "preference": "cheapest"},
        format="json",
    )
    assert r.status_code == 200
    c = r.json()["candidates"][0]
    assert c["node"]["id"] == node.pk and c["cost_per_hour"] == "2000000"
    assert [p["name"] for p in c["parts"]] == ["health", "proximity", "price"]
    assert c["total_ppm"] == sum(p["points_ppm"] for p in c["parts"])


def test_rent_quote_end_top_up_over_the_api(api, clock, node, renter):
    api.force_authenticate(renter)
    r = api.post(
        "/api/marketplace/rentals/",
        {"node": node.pk, "mode": "reserved", "image": IMAGE, "epochs": 10, "quote_only": True},
        format="json",
    )
    assert r.status_code == 200 and r.json()["escrow"] == "333330" and r.json()["affordable"] is True
    assert not Rental.objects.exists()
    r = api.post(
        "/api/marketplace/rentals/",
        {"node": node.pk, "mode": "on_demand", "image": IMAGE, "escrow": "100000", "expected_price_per_epoch": "33333"},
        format="json",
    )
    assert r.status_code == 201, r.json()
    rental = r.json()
    assert rental["escrow_left"] == "100000" and rental["end_epoch"] == 13
    r = api.post(f"/api/marketplace/rentals/{rental['id']}/top-up/", {"amount": "33333"}, format="json")
    assert r.json()["end_epoch"] == 14
    r = api.post(f"/api/marketplace/rentals/{rental['id']}/end/")
    assert r.status_code == 200 and r.json()["refund"] == str(133_333 - 33_333) and r.json()["status"] == "ended"
    r = api.post(f"/api/marketplace/rentals/{rental['id']}/end/")
    assert r.status_code == 400 and "already ended" in r.json()["detail"]
    assert [x["id"] for x in api.get("/api/marketplace/rentals/").json()["results"]] == [rental["id"]]
    assert verify_ledger().ok


def test_rent_refusals_are_400_with_the_reason(api, clock, node, other_user):
    api.force_authenticate(other_user)
    r = api.post(
        "/api/marketplace/rentals/", {"node": node.pk, "mode": "reserved", "image": IMAGE, "epochs": 5}, format="json"
    )
    assert r.status_code == 400 and "your available balance is 0 ATH" in r.json()["detail"]
    r = api.post(
        "/api/marketplace/rentals/",
        {"node": node.pk, "mode": "reserved", "image": IMAGE, "epochs": 5, "escrow": 1.5},
        format="json",
    )
    assert r.status_code == 400 and "escrow" in r.json()  # floats are refused


def test_anonymous_cannot_act(api, clock, node):
    for url in [
        "/api/marketplace/rentals/",
        "/api/marketplace/provider/nodes/",
        "/api/marketplace/rentals/1/end/",
        f"/api/marketplace/provider/nodes/{node.pk}/offline/",
        f"/api/marketplace/provider/nodes/{node.pk}/withdraw/",
        f"/api/marketplace/provider/nodes/{node.pk}/collateral/",
    ]:
        assert api.post(url, {}, format="json").status_code in (401, 403), url
    assert api.get("/api/marketplace/provider/earnings/").status_code in (401, 403)


def test_nobody_touches_another_persons_rental_or_node(api, clock, node, renter, other_user):
    api.force_authenticate(renter)
    rental_id = api.post(
        "/api/marketplace/rentals/",
        {"node": node.pk, "mode": "on_demand", "image": IMAGE, "escrow": "1000000"},
        format="json",
    ).json()["id"]
    fund(open_wallet(other_user), ath(100))
    height = LedgerTransaction.objects.count()
    api.force_authenticate(other_user)
    assert api.get(f"/api/marketplace/rentals/{rental_id}/").status_code == 404
    for action, body in [("end", {}), ("top-up", {"amount": "1"}), ("replace", {"node": node.pk})]:
        assert api.post(f"/api/marketplace/rentals/{rental_id}/{action}/", body, format="json").status_code == 404
    assert api.get(f"/api/marketplace/provider/nodes/{node.pk}/").status_code == 404
    for action, body in [("collateral", {"amount": "1"}), ("offline", {}), ("withdraw", {})]:
        assert api.post(f"/api/marketplace/provider/nodes/{node.pk}/{action}/", body, format="json").status_code == 404
    assert api.get("/api/marketplace/rentals/").json()["results"] == []
    assert LedgerTransaction.objects.count() == height
    assert Rental.objects.get().status == RentalStatus.ACTIVE
    assert GpuNode.objects.get(pk=node.pk).status == "online"


def test_provider_register_and_manage_over_the_api(api, clock, user):
    api.force_authenticate(user)
    body = {
        "name": "api-l40s",
        "gpu_model": "l40s",
        "gpu_count": 2,
        "vcpu": 32,
        "ram_gb": 256,
        "region": "us-west",
        "bandwidth_mbps": 10000,
        "price_per_gpu_hour": "900000",
        "endpoint": "http://198.51.100.4:9100/health",
    }
    r = api.post("/api/marketplace/provider/nodes/", body, format="json")
    assert r.status_code == 400 and "needs 6,000 ATH of collateral" in r.json()["detail"]
    fund(open_wallet(user), ath(6_001))
    r = api.post("/api/marketplace/provider/nodes/", body, format="json")
    assert r.status_code == 201 and r.json()["agent_token"].startswith("agt_") and r.json()["status"] == "pending"
    pk = r.json()["id"]
    assert "agent_token" not in api.get(f"/api/marketplace/provider/nodes/{pk}/").json()
    r = api.post(f"/api/marketplace/provider/nodes/{pk}/collateral/", {"amount": "1000000"}, format="json")
    assert r.json()["collateral"] == str(ath(6_001))
    r = api.post(f"/api/marketplace/provider/nodes/{pk}/withdraw/")
    assert r.status_code == 400 and "offline first" in r.json()["detail"]
    r = api.post(f"/api/marketplace/provider/nodes/{pk}/offline/")
    assert r.json()["status"] == "offline" and r.json()["withdraw_from_epoch"] == 17
    clock.epoch = 17
    r = api.post(f"/api/marketplace/provider/nodes/{pk}/withdraw/")
    assert r.json()["withdrawn"] == str(ath(6_001)) and open_wallet(user).available == ath(6_001)
    assert api.get("/api/marketplace/provider/earnings/").json()["per_epoch"] == []
    assert verify_ledger().ok


def test_replace_over_the_api_after_a_failure(api, clock, node, renter):
    from apps.marketplace.services import settle_rentals

    spare = online(make_node(name="spare", region="eu-central", price_ath="2")[0])
    api.force_authenticate(renter)
    rid = api.post(
        "/api/marketplace/rentals/", {"node": node.pk, "mode": "reserved", "image": IMAGE, "epochs": 5}, format="json"
    ).json()["id"]
    r = api.post(f"/api/marketplace/rentals/{rid}/replace/", {"node": spare.pk}, format="json")
    assert r.status_code == 400 and "healthy" in r.json()["detail"]
    consensus(node, 10, uptime=0, latency=None)
    settle_rentals(10)
    detail = api.get(f"/api/marketplace/rentals/{rid}/").json()
    assert detail["charges"][0]["outcome"] == "failed" and detail["charges"][0]["sla_credit"] == "3333"
    clock.epoch = 11
    r = api.post(f"/api/marketplace/rentals/{rid}/replace/", {"node": spare.pk}, format="json")
    assert r.status_code == 201 and r.json()["node"] == spare.pk and r.json()["replaces"] == rid
    assert verify_ledger().ok

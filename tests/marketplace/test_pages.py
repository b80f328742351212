"""The marketplace pages: catalogue filters, renting with a confirm step,
the rental page, provider onboarding and dashboard, and who may do what."""

import pytest
from django.urls import reverse

from apps.accounts.services import open_wallet
from apps.core import parameters
from apps.core.amounts import ath
from apps.core.models import GpuModel, GpuNode, LedgerTransaction, Region
from apps.core.verify import verify_ledger
from apps.marketplace import rentals
from apps.marketplace.models import Rental, RentalMode, RentalStatus

from ..factories import UserFactory, fund, make_node
from .conftest import consensus, online

IMAGE = "ollama/ollama:latest"


@pytest.fixture
def market(clock, node):
    b = online(
        make_node(name="tokyo-4090", gpu="rtx-4090", count=2, region="ap-northeast", price_ath="0.4")[0], 930_000
    )
    consensus(node, 8)
    consensus(node, 9, uptime=970_000)
    return {"h100": node, "4090": b}


def test_catalogue_lists_filters_and_sorts(client, market):
    r = client.get(reverse("marketplace:index"))
    assert r.status_code == 200
    body = r.content.decode()
    assert "fra-h100" in body and "tokyo-4090" in body
    assert "98% up" in body  # sparkline of the two epochs: (100% + 97%) / 2
    r = client.get(reverse("marketplace:index"), {"min_vram": "48"})
    assert "fra-h100" in r.content.decode() and "tokyo-4090" not in r.content.decode()
    r = client.get(reverse("marketplace:index"), {"max_price": "1", "region": "ap-northeast"})
    assert "tokyo-4090" in r.content.decode() and "fra-h100" not in r.content.decode()
    r = client.get(reverse("marketplace:index"), {"sort": "proximity", "near": "ap-east"})
    body = r.content.decode()
    assert body.index("tokyo-4090") < body.index("fra-h100")
    assert "distances from Asia Pacific (Hong Kong)" in body
    # htmx asks for the results only; bad values are ignored, never an error
    r = client.get(reverse("marketplace:index"), {"min_health": "abc", "count": "2"}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.content.decode() and 'id="results"' in r.content.decode()
    assert "tokyo-4090" in r.content.decode() and "fra-h100" not in r.content.decode()


def test_cards_and_the_node_page_show_the_reported_cuda_and_disk_or_say_not_reported(client, market):
    GpuNode.objects.filter(pk=market["h100"].pk).update(cuda_version="12.4", disk_free_gb=1200, disk_total_gb=2000)
    body = client.get(reverse("marketplace:index")).content.decode()
    cards = {
        name: card
        for card in body.split('data-testid="offer"')[1:]
        for name in ("fra-h100", "tokyo-4090")
        if name in card
    }
    assert "CUDA 12.4 · 1200 of 2000 GB disk free" in cards["fra-h100"]
    assert "CUDA not reported · disk not reported" in cards["tokyo-4090"]
    page = client.get(reverse("marketplace:node", args=[market["h100"].pk])).content.decode()
    assert "CUDA 12.4 · 1200 of 2000 GB disk free" in page
    page = client.get(reverse("marketplace:node", args=[market["4090"].pk])).content.decode()
    assert "CUDA not reported · disk not reported" in page


def test_rented_nodes_leave_the_available_list(client, market, renter):
    rentals.rent(renter, market["h100"].pk, mode=RentalMode.RESERVED, epochs_=3, image=IMAGE)
    assert "fra-h100" not in client.get(reverse("marketplace:index")).content.decode()
    assert "fra-h100" in client.get(reverse("marketplace:index"), {"availability": "all"}).content.decode()


def test_rent_needs_a_confirm_step_then_escrows(client, market, renter):
    client.force_login(renter)
    node = market["h100"]
    url = reverse("marketplace:rent", args=[node.pk])
    form = {"mode": "reserved", "hours": "1", "image": IMAGE, "region": "eu-central", "auto_replace": "on"}
    r = client.post(url, form)
    assert r.status_code == 200
    body = r.content.decode()
    assert "Confirm your rental" in body and "1.99998 ATH" in body  # 60 epochs x 33,333 uATH
    assert not Rental.objects.exists() and open_wallet(renter).escrowed == 0
    r = client.post(url, {**form, "confirm": "1", "quoted_price_per_epoch": "33333"})
    rental = Rental.objects.get()
    assert r.status_code == 302 and r["Location"] == rental.get_absolute_url()
    assert rental.escrow_total == 1_999_980 and rental.auto_replace and rental.renter_region.code == "eu-central"
    page = client.get(rental.get_absolute_url()).content.decode()
    assert "1.99998 ATH" in page and f"/ws/monitoring/nodes/{node.pk}/" in page
    r = client.get(reverse("marketplace:rental-escrow", args=[rental.pk]), headers={"HX-Request": "true"})
    assert 'id="escrow"' in r.content.decode()
    # end it: the refund is on the page and in the wallet
    before = open_wallet(renter).available
    r = client.post(reverse("marketplace:rental-end", args=[rental.pk]), follow=True)
    assert "of unserved time is back in your wallet" in r.content.decode()
    assert open_wallet(renter).available == before + 59 * 33_333
    assert verify_ledger().ok


def test_rent_refusal_is_shown_with_its_reason(client, market, genesis):
    poor = UserFactory()
    client.force_login(poor)
    r = client.post(
        reverse("marketplace:rent", args=[market["h100"].pk]),
        {"mode": "reserved", "hours": "1", "image": IMAGE, "confirm": "1", "quoted_price_per_epoch": "33333"},
    )
    assert r.status_code == 400
    assert "needs 1.99998 ATH in escrow; your available balance is 0 ATH" in r.content.decode()
    r = client.post(
        reverse("marketplace:rent", args=[market["h100"].pk]),
        {"mode": "reserved", "hours": "1", "image": "Not An Image"},
    )
    assert r.status_code == 400 and "not a container image reference" in r.content.decode()


def test_match_page_explains_the_ranking(client, market):
    r = client.get(
        reverse("marketplace:match"), {"count": "1", "hours": "2", "preference": "balanced", "region": "eu-west"}
    )
    body = r.content.decode()
    assert r.status_code == 200 and "2 nodes fit" in body
    assert "Health" in body and "Proximity" in body and "the cheapest match" in body
    assert "km from Europe West (Dublin)" in body


def test_other_peoples_rentals_are_not_found_and_untouchable(client, market, renter, other_user):
    rental = rentals.rent(renter, market["h100"].pk, mode=RentalMode.ON_DEMAND, escrow=ath(1), image=IMAGE)
    fund(open_wallet(other_user), ath(10))
    client.force_login(other_user)
    height = LedgerTransaction.objects.count()
    assert client.get(rental.get_absolute_url()).status_code == 404
    assert client.get(reverse("marketplace:rental-escrow", args=[rental.pk])).status_code == 404
    assert client.post(reverse("marketplace:rental-end", args=[rental.pk])).status_code == 404
    assert client.post(reverse("marketplace:rental-top-up", args=[rental.pk]), {"amount": "1"}).status_code == 404
    assert (
        client.post(reverse("marketplace:rental-replace", args=[rental.pk]), {"node": market["4090"].pk}).status_code
        == 404
    )
    rental.refresh_from_db()
    assert rental.status == RentalStatus.ACTIVE and rental.escrow_total == ath(1)
    assert LedgerTransaction.objects.count() == height


def test_anonymous_visitors_are_sent_to_log_in_for_every_action(client, market):
    node = market["h100"]
    for name, args in [
        ("rent", [node.pk]),
        ("rental-end", [1]),
        ("rental-top-up", [1]),
        ("rental-replace", [1]),
        ("provider-top-up", [node.pk]),
        ("provider-withdraw", [node.pk]),
        ("provider-offline", [node.pk]),
    ]:
        r = client.post(reverse(f"marketplace:{name}", args=args))
        assert r.status_code == 302 and "/accounts/login/" in r["Location"], name
    for name, args in [("rentals", []), ("provider", []), ("provider-new", []), ("provider-node", [node.pk])]:
        assert "/accounts/login/" in client.get(reverse(f"marketplace:{name}", args=args))["Location"]


def test_onboarding_form_refuses_with_the_reason_and_shows_the_token_once(client, user, clock):
    client.force_login(user)
    h100 = GpuModel.objects.get(slug="h100-80gb")
    form = {
        "name": "my-h100",
        "gpu_model": h100.pk,
        "gpu_count": "1",
        "vcpu": "16",
        "ram_gb": "128",
        "region": Region.objects.get(code="eu-west").pk,
        "bandwidth_mbps": "1000",
        "price": "2",
        "sla_tier": "standard",
        "endpoint": "http://127.0.0.1:9100/health",
    }
    r = client.post(reverse("marketplace:provider-new"), form)
    assert r.status_code == 400
    assert (
        "This node needs 10,000 ATH of collateral (10 x 1 GPUs x 1,000 ATH); your available balance is 0 ATH."
        in r.content.decode()
    )
    r = client.post(reverse("marketplace:provider-new"), {**form, "bandwidth_mbps": "50"})
    assert "50 Mbps is below the network&#x27;s bandwidth floor of 100 Mbps." in r.content.decode()
    assert not GpuNode.objects.exists()
    fund(open_wallet(user), ath(10_000))
    r = client.post(reverse("marketplace:provider-new"), form)
    node = GpuNode.objects.get()
    assert r.status_code == 302 and r["Location"] == reverse("marketplace:provider-token", args=[node.pk])
    page = client.get(r["Location"]).content.decode()
    assert "agt_" in page and "run_provider_agent" in page and "--token agt_" in page
    assert "agt_" not in client.get(r["Location"]).content.decode()  # once
    assert node.status == "pending" and node.collateral == ath(10_000) and open_wallet(user).collateral == ath(10_000)
    dash = client.get(reverse("marketplace:provider")).content.decode()
    assert "my-h100" in dash and "10,000 ATH" in dash


def test_onboarding_collateral_preview(client, user):
    client.force_login(user)
    h200 = GpuModel.objects.get(slug="h200")
    r = client.get(
        reverse("marketplace:provider-preview"),
        {"gpu_model": h200.pk, "gpu_count": "2"},
        headers={"HX-Request": "true"},
    )
    assert "24,000 ATH" in r.content.decode() and "not enough" in r.content.decode()


def test_provider_collateral_lifecycle_and_permissions(client, clock, node, other_user):
    provider = node.provider
    fund(open_wallet(other_user), ath(100))
    client.force_login(other_user)
    for name in ("provider-node", "provider-token"):
        assert client.get(reverse(f"marketplace:{name}", args=[node.pk])).status_code == 404
    for name in ("provider-top-up", "provider-withdraw", "provider-offline"):
        assert client.post(reverse(f"marketplace:{name}", args=[node.pk]), {"amount": "1"}).status_code == 404
    node.refresh_from_db()
    assert node.status == "online" and node.collateral == ath(10_000)

    client.force_login(provider)
    fund(open_wallet(provider), ath(5))
    client.post(reverse("marketplace:provider-top-up", args=[node.pk]), {"amount": "5"})
    node.refresh_from_db()
    assert node.collateral == ath(10_005)
    r = client.post(reverse("marketplace:provider-withdraw", args=[node.pk]), follow=True)
    assert "Take fra-h100 offline first" in r.content.decode()
    client.post(reverse("marketplace:provider-offline", args=[node.pk]))
    node.refresh_from_db()
    assert node.status == "offline" and node.offline_since_epoch == 10
    r = client.post(reverse("marketplace:provider-withdraw", args=[node.pk]), follow=True)
    assert "unbonds until epoch 17 (now 10); 7 epochs to go" in r.content.decode()
    clock.epoch = 17
    before = open_wallet(provider).available
    client.post(reverse("marketplace:provider-withdraw", args=[node.pk]))
    assert open_wallet(provider).available == before + ath(10_005)
    assert open_wallet(provider).collateral == 0
    assert verify_ledger().ok


def test_a_rented_node_cannot_go_offline(client, clock, node, renter):
    rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=5, image=IMAGE)
    client.force_login(node.provider)
    r = client.post(reverse("marketplace:provider-offline", args=[node.pk]), follow=True)
    # Five epochs from epoch 10: 10 to 14; the rental ends as epoch 15 begins.
    assert "is rented through epoch 14 (the rental ends when epoch 15 begins)" in r.content.decode()
    node.refresh_from_db()
    assert node.status == "online"


def test_floor_follows_the_parameters(client, user, clock):
    parameters.apply({"min_vram_gb": 24}, effective_epoch=0, source="test")
    client.force_login(user)
    t4 = GpuModel.objects.get(slug="t4")
    r = client.post(
        reverse("marketplace:provider-new"),
        {
            "name": "t4",
            "gpu_model": t4.pk,
            "gpu_count": "1",
            "vcpu": "4",
            "ram_gb": "16",
            "region": Region.objects.first().pk,
            "bandwidth_mbps": "1000",
            "price": "0.1",
            "sla_tier": "standard",
            "endpoint": "http://127.0.0.1:9100/health",
        },
    )
    assert "NVIDIA T4 16GB has 16 GB of VRAM; the network&#x27;s floor is 24 GB." in r.content.decode()

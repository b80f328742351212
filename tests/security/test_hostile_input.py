"""Hostile input: bad amounts on every money form and its API twin, script
in every free-text field, and CSRF on every form."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.core.amounts import ath
from apps.core.models import ChainHead
from apps.core.verify import verify_ledger

from ..factories import NODE_SPEC
from .routes import mutating_routes, url_for

BAD_AMOUNTS = {
    "negative": "-5",
    "zero": "0",
    "huge": str(10**30),
    "fractional": "0.0000001",
    "non-numeric": "lots",
    "overlong": "9" * 10_000,
    "exponent": "1e9",
    "nan": "NaN",
}
IMAGE = "nvcr.io/nvidia/pytorch:24.08-py3"


def height():
    return ChainHead.objects.get().height


def same_bodies(w):
    """(name: form url, API url, body) for each money action whose web form
    and API take the same body."""
    to = w.provider2.wallet.address
    rental, node = w.rental.pk, w.node.pk
    return {
        "send": ("/accounts/wallet/send/", "/api/wallet/send/", lambda v: {"to_address": to, "amount": v, "memo": ""}),
        "delegate": ("/staking/delegate/", "/api/staking/delegate/", lambda v: {"checker": w.checker.pk, "amount": v}),
        "undelegate": (
            "/staking/undelegate/",
            "/api/staking/undelegate/",
            lambda v: {"checker": w.checker.pk, "amount": v},
        ),
        "top-up": (
            f"/marketplace/rentals/{rental}/top-up/",
            f"/api/marketplace/rentals/{rental}/top-up/",
            lambda v: {"amount": v},
        ),
        "collateral": (
            f"/marketplace/provide/nodes/{node}/collateral/",
            f"/api/marketplace/provider/nodes/{node}/collateral/",
            lambda v: {"amount": v},
        ),
    }


def web_forms(w):
    """(name, url, body with the amount field named) for each money form."""
    return {
        **{name: (url, body) for name, (url, _, body) in same_bodies(w).items()},
        "rent-escrow": (
            f"/marketplace/nodes/{w.other_node.pk}/rent/",
            lambda v: {"mode": "on_demand", "escrow": v, "image": IMAGE, "confirm": "1", "quoted_price_per_epoch": "0"},
        ),
        "rent-hours": (
            f"/marketplace/nodes/{w.other_node.pk}/rent/",
            lambda v: {"mode": "reserved", "hours": v, "image": IMAGE, "confirm": "1", "quoted_price_per_epoch": "0"},
        ),
        "proposal-deposit": ("/governance/new/text/", lambda v: {"title": "T", "description": "D", "deposit": v}),
        "activate": (
            "/staking/operator/activate/",
            lambda v: {"name": "B", "self_stake": v, "commission_rate": "5", "commission_max_rate": "20"},
        ),
    }


def api_forms(w):
    return {
        **{name: (url, body) for name, (_, url, body) in same_bodies(w).items()},
        "rent-escrow": (
            "/api/marketplace/rentals/",
            lambda v: {"node": w.other_node.pk, "mode": "on_demand", "image": IMAGE, "escrow": v},
        ),
        "rent-epochs": (
            "/api/marketplace/rentals/",
            lambda v: {"node": w.other_node.pk, "mode": "reserved", "image": IMAGE, "epochs": v},
        ),
        "proposal-deposit": (
            "/api/governance/proposals/",
            lambda v: {"kind": "text", "title": "T", "description": "D", "deposit": v},
        ),
        "activate": (
            "/api/staking/checkers/",
            lambda v: {"name": "B", "self_stake": v, "commission_rate_ppm": 50_000, "commission_max_rate_ppm": 200_000},
        ),
    }


SAME_BODY_NAMES = ["send", "delegate", "undelegate", "top-up", "collateral"]
FORM_NAMES = [*SAME_BODY_NAMES, "rent-escrow", "rent-hours", "proposal-deposit", "activate"]
API_NAMES = [*SAME_BODY_NAMES, "rent-escrow", "rent-epochs", "proposal-deposit", "activate"]


@pytest.mark.parametrize("form", FORM_NAMES)
def test_web_forms_refuse_bad_amounts(form, world, owner_client):
    url, body = web_forms(world)[form]
    h = height()
    for label, value in BAD_AMOUNTS.items():
        if label == "fractional" and form == "rent-hours":
            value = "1.5"
        r = owner_client.post(url, body(value), follow=False)
        assert r.status_code in (200, 302, 400), (form, label, r.status_code)
        if r.status_code == 302:  # a redirect back with the reason in a message
            follow = owner_client.get(r["Location"])
            assert follow.status_code == 200
            assert any(m.level_tag == "error" for m in follow.context["messages"]) if follow.context else True, (
                form,
                label,
            )
        assert height() == h, (form, label, "the ledger moved")
    assert verify_ledger().ok


@pytest.mark.parametrize("form", API_NAMES)
def test_api_refuses_bad_amounts_with_400_and_a_message(form, world):
    api = APIClient()
    api.force_authenticate(world.owner)
    url, body = api_forms(world)[form]
    h = height()
    values = {
        **({"overlong": "9" * 10_000} if form == "rent-epochs" else {}),
        **{k: v for k, v in BAD_AMOUNTS.items() if k != "overlong"},
        "fractional": "0.5",
        "long": "9" * 40,
        "json-number-huge": 10**30,
        "json-negative": -1,
        "json-float": 1.5,
        "json-list": [1],
        "json-null": None,
    }
    for label, value in values.items():
        r = api.post(url, body(value), format="json")
        assert r.status_code == 400, (form, label, r.status_code, r.content[:200])
        assert r.json(), (form, label)
        assert height() == h, (form, label, "the ledger moved")
    assert verify_ledger().ok


@pytest.mark.parametrize("value", ["9" * 10_000, "\u00b2"], ids=["10000-digits", "superscript-two"])
@pytest.mark.parametrize("form", [n for n in API_NAMES if n != "rent-epochs"])  # epochs is a DRF IntegerField: fine
def test_api_overlong_or_odd_digit_amounts_are_400(form, value, world):
    api = APIClient()
    api.force_authenticate(world.owner)
    api.raise_request_exception = False
    url, body = api_forms(world)[form]
    h = height()
    r = api.post(url, body(value), format="json")
    assert r.status_code == 400, (form, r.status_code)
    assert height() == h


def test_overlong_free_text_is_refused_not_crashed(world, owner_client):
    api = APIClient()
    api.force_authenticate(world.owner)
    long = "x" * 10_000
    h = height()
    assert (
        api.post("/api/wallet/send/", {"to_address": long, "amount": "1", "memo": long}, format="json").status_code
        == 400
    )
    assert (
        api.post(
            "/api/governance/proposals/",
            {"kind": "text", "title": long, "description": long * 10, "deposit": str(ath(10_000))},
            format="json",
        ).status_code
        == 400
    )
    assert (
        owner_client.post("/accounts/wallet/send/", {"to_address": long, "amount": "1", "memo": long}).status_code
        == 400
    )
    assert (
        owner_client.post("/governance/new/text/", {"title": long, "description": "d", "deposit": "10000"}).status_code
        == 400
    )
    assert (
        owner_client.post(
            "/staking/operator/activate/",
            {"name": long, "self_stake": "10000", "commission_rate": "5", "commission_max_rate": "20"},
        ).status_code
        == 400
    )
    assert owner_client.post("/governance/new/" + "k" * 10_000 + "/", {}).status_code == 404
    assert height() == h and verify_ledger().ok


# --- Script in free text renders inert ------------------------------------------

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def assert_inert(response, where):
    html = response.content.decode()
    assert response.status_code == 200, where
    assert "&lt;script&gt;" in html, f"{where}: the text is not shown escaped"
    assert "<script>alert" not in html, f"{where}: raw script"
    assert "<img src=x onerror" not in html, f"{where}: raw tag"


def test_memo_renders_inert(world, owner_client):
    r = owner_client.post(
        "/accounts/wallet/send/", {"to_address": world.provider2.wallet.address, "amount": "1", "memo": XSS}
    )
    assert r.status_code == 200
    assert_inert(owner_client.get("/accounts/wallet/"), "wallet")
    h = height()
    assert_inert(owner_client.get(f"/explorer/tx/{h}/"), "explorer tx")
    assert_inert(Client().get(f"/explorer/account/{world.wallet.address}/"), "explorer account")


def test_node_name_renders_inert(world, owner_client):
    from apps.core.models import GpuModel, Region

    r = owner_client.post(
        "/marketplace/provide/new/",
        {
            **NODE_SPEC,
            "name": XSS[:80],
            "gpu_model": GpuModel.objects.get(slug="h100-80gb").pk,
            "region": Region.objects.get(code="eu-west").pk,
            "price": "2",
        },
    )
    assert r.status_code == 302, r.content.decode()[-2000:]
    from apps.core.models import GpuNode, NodeStatus

    node = GpuNode.objects.get(name=XSS[:80])
    GpuNode.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE, health_score=1_000_000)
    anon = Client()
    for url in (
        "/marketplace/",
        f"/marketplace/nodes/{node.pk}/",
        "/monitoring/nodes/",
        f"/monitoring/nodes/{node.pk}/",
    ):
        assert_inert(anon.get(url), url)
    for url in ("/marketplace/provide/", f"/marketplace/provide/nodes/{node.pk}/"):
        assert_inert(owner_client.get(url), url)


def test_proposal_title_and_description_render_inert(world, owner_client):
    r = owner_client.post(
        "/governance/new/text/",
        {"title": XSS, "description": XSS + "\n\n[link](javascript:alert(1))", "deposit": "10000"},
    )
    assert r.status_code == 302, r.content.decode()[-2000:]
    from apps.governance.models import Proposal

    p = Proposal.objects.get(title=XSS)
    anon = Client()
    for url in ("/governance/", f"/governance/{p.pk}/", "/"):
        res = anon.get(url)
        if url == "/" and "&lt;script&gt;" not in res.content.decode():
            assert "<script>alert" not in res.content.decode()
            continue
        assert_inert(res, url)
    assert 'href="javascript:' not in anon.get(f"/governance/{p.pk}/").content.decode()


def test_checker_name_renders_inert(world, owner_client):
    r = owner_client.post(
        "/staking/operator/activate/",
        {"name": XSS[:80], "self_stake": "10000", "commission_rate": "5", "commission_max_rate": "20"},
    )
    assert r.status_code == 302, r.content.decode()[-2000:]
    from apps.core.models import CheckerNode

    c = CheckerNode.objects.get(name=XSS[:80])
    anon = Client()
    for url in ("/staking/", f"/staking/checker/{c.pk}/", "/monitoring/checkers/", f"/monitoring/checkers/{c.pk}/"):
        assert_inert(anon.get(url), url)
    assert_inert(owner_client.get("/staking/operator/"), "operator")


# --- CSRF -------------------------------------------------------------------------

CSRF_ROUTES = [r for r in mutating_routes() if not r.is_agent]


@pytest.mark.parametrize("route", CSRF_ROUTES, ids=[r.name for r in CSRF_ROUTES])
def test_logged_in_post_without_csrf_token_is_403(route, world):
    from .routes import body_for

    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner)
    before = height()
    r = client.post(url_for(route, world), body_for(route, world))
    assert r.status_code == 403, (route, r.status_code)
    assert height() == before

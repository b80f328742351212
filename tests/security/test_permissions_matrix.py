"""The permissions matrix: every state-changing route, found by walking the
URL resolver, is posted to with the owner's objects in the URL as an
anonymous visitor, a logged-in stranger and (for agent routes) other agents'
tokens. Only the owner may change the owner's things; nobody else changes
anything at all."""

import pytest
from rest_framework.test import APIClient

from apps.core.verify import verify_ledger

from .conftest import agent, owned_rows, snapshot
from .routes import body_for, mutating_routes, url_for

ROUTES = mutating_routes()
IDS = [r.name or r.route for r in ROUTES]

# Anyone may post these: logging in, signing up, logging out, choosing a language, and the
# (read-only) marketplace matcher.
PUBLIC = {
    "accounts:login",
    "accounts:signup",
    "accounts:logout",
    "api:marketplace-match",
    "explorer:verify",
    "set_language",  # only sets the visitor's language cookie
}
# The caller acts on their own wallet; a stranger doing so moves only their own things.
SELF_SERVICE = {"accounts:faucet", "api:faucet", "accounts:password_change", "accounts:public_profile"}
# The URL names an object of the owner's: a stranger must be told 403 or 404.
OWNER_SCOPED_MARKERS = (
    "rentals/<int:pk>/",
    "provide/nodes/",
    "provider/nodes/<int:pk>",
    "operator/<int:pk>",
    "checkers/<int:pk>/",
)

KNOWN = {
    "accounts:faucet",
    "accounts:send",
    "api:faucet",
    "api:send",
    "marketplace:rent",
    "marketplace:rental-end",
    "api:marketplace-rentals",
    "api:marketplace-rental-end",
    "staking:delegate",
    "staking:undelegate",
    "staking:claim",
    "api:staking-api:delegate",
    "api:staking-api:undelegate",
    "api:staking-api:claim",
    "governance:vote",
    "governance:create",
    "api:governance-vote",
    "api:governance-proposals",
    "api:agent-heartbeats",
    "api:agent-reports",
    "api:agent-key",
}


def post(client, route, w, method="post"):
    url, data = url_for(route, w), body_for(route, w)
    if isinstance(client, APIClient) or route.is_api:
        return (
            getattr(client, method)(url, data, format="json")
            if isinstance(client, APIClient)
            else getattr(client, method)(url, data, content_type="application/json")
        )
    return getattr(client, method)(url, data)


def test_discovery_finds_every_known_mutating_route():
    names = {r.name for r in ROUTES}
    assert len(ROUTES) >= len(KNOWN)
    assert KNOWN <= names, f"not discovered: {sorted(KNOWN - names)}"
    assert all(r.name for r in ROUTES), "every mutating route has a name"


def test_function_views_found_mutating_do_not_answer_405(world, stranger_client):
    for route in ROUTES:
        if getattr(route.callback, "cls", None) or getattr(route.callback, "view_class", None):
            continue
        r = post(stranger_client, route, world)
        assert r.status_code != 405, route


@pytest.mark.parametrize("route", ROUTES, ids=IDS)
def test_anonymous_is_refused_and_changes_nothing(route, world, anon):
    before, rows = snapshot(), owned_rows(world)
    for method in sorted(route.methods):
        r = post(anon, route, world, method)
        assert r.status_code < 500, (route, method, r.status_code)
        if route.name in PUBLIC:
            continue
        if route.is_api:
            assert r.status_code in (401, 403), (route, method, r.status_code)
        else:
            assert r.status_code == 302 and r["Location"].startswith("/accounts/login/"), (route, method, r.status_code)
    if route.name not in {"accounts:signup"}:  # an empty sign-up form creates nobody either, checked below
        assert snapshot() == before, route
    assert owned_rows(world) == rows, route


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if not r.is_agent], ids=[i for r, i in zip(ROUTES, IDS, strict=True) if not r.is_agent]
)
def test_logged_in_stranger_cannot_touch_the_owners_things(route, world, stranger_client):
    before, rows = snapshot(), owned_rows(world)
    owner_wallet = before["balances"][world.wallet.address]
    for method in sorted(route.methods):
        r = post(stranger_client, route, world, method)
        code = r.status_code
        assert code < 500, (route, method, code)
        if any(m in route.route for m in OWNER_SCOPED_MARKERS):
            assert code in (403, 404), (route, method, code)
        elif route.name not in PUBLIC | SELF_SERVICE:
            assert code in (302, 400, 403, 404, 409), (route, method, code)
            if code == 302:
                assert not r["Location"].startswith("/accounts/login/"), route
    after = snapshot()
    assert owned_rows(world) == rows, route
    assert after["balances"][world.wallet.address] == owner_wallet, route
    if route.name in SELF_SERVICE:
        # Only the stranger's own wallet (and the faucet paying it) may move.
        changed = {a for a in after["balances"] if after["balances"][a] != before["balances"].get(a)}
        assert changed <= {world.stranger.wallet.address, *_module_addresses()}, route
    else:
        assert after == before, route
    assert verify_ledger().ok


def _module_addresses():
    from apps.core.models import Account, AccountKind

    return set(Account.objects.exclude(kind=AccountKind.USER).values_list("address", flat=True))


AGENT_ROUTES = [r for r in ROUTES if r.is_agent]


@pytest.mark.parametrize("route", AGENT_ROUTES, ids=[r.name for r in AGENT_ROUTES])
def test_agent_routes_refuse_sessions_and_other_agents_cannot_act_for_the_owner(
    route, world, stranger_client, owner_client
):
    from apps.monitoring.models import CheckerReport, Heartbeat

    def owner_telemetry():
        return (
            Heartbeat.objects.filter(node=world.node).count(),
            CheckerReport.objects.filter(checker=world.checker).count(),
            CheckerReport.objects.filter(node=world.node).count(),
        )

    before, rows, tele = snapshot(), owned_rows(world), owner_telemetry()
    # A browser session (the owner's own, even) is not an agent.
    for client in (stranger_client, owner_client):
        assert post(client, route, world).status_code in (401, 403), route
    assert snapshot() == before
    # Tokens of other agents: refused, or acting for their own node/checker only.
    for token in (world.other_node_token, world.other_checker_token, "agt_" + "x" * 43):
        r = post(agent(token), route, world)
        assert r.status_code < 500, (route, r.status_code)
    after = snapshot()
    assert owned_rows(world) == rows, route
    assert owner_telemetry() == tele, route
    assert after["head"] == before["head"] and after["balances"] == before["balances"]


def test_owner_requests_with_the_same_bodies_succeed(world):
    """The bodies above are valid: the owner gets through with them."""
    by_name = {r.name: r for r in ROUTES}
    api = APIClient()
    api.force_authenticate(world.owner)
    expected = {
        "api:send": 201,
        "api:staking-api:delegate": 201,
        "api:staking-api:undelegate": 201,
        "api:governance-vote": 200,
        "api:marketplace-rental-top-up": 200,
        "api:staking-api:commission": 200,
    }
    for name, code in expected.items():
        r = post(api, by_name[name], world)
        assert r.status_code in (code, 200, 201), (name, r.status_code, r.content[:300])
    r = post(agent(world.node_token), by_name["api:agent-heartbeats"], world)
    assert r.status_code == 201, r.content
    from apps.monitoring.models import Heartbeat

    assert Heartbeat.objects.filter(node=world.node).count() == 1
    assert verify_ledger().ok


def test_owner_web_forms_with_the_same_bodies_succeed(world, owner_client):
    by_name = {r.name: r for r in ROUTES}
    for name in ("accounts:send", "staking:delegate", "marketplace:rental-top-up", "governance:vote"):
        r = post(owner_client, by_name[name], world)
        assert r.status_code in (200, 302), (name, r.status_code)
        if r.status_code == 302:
            assert not r["Location"].startswith("/accounts/login/")
    from apps.governance.models import Vote

    assert Vote.objects.filter(proposal=world.proposal).count() == 1
    assert verify_ledger().ok


def test_admin_is_staff_only(world, stranger_client):
    from django.contrib.auth import get_user_model

    n = get_user_model().objects.count()
    r = stranger_client.post(
        "/admin/auth/user/add/", {"username": "mallory", "password1": "x" * 12, "password2": "x" * 12}
    )
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
    assert get_user_model().objects.count() == n

"""Personal API tokens: made on the developer page, shown once, stored as a
digest, usable as ``Authorization: Bearer`` on the API within their scopes,
refused at once when revoked or expired, limited per token."""

import logging
import re
from datetime import timedelta

from django.urls import resolve
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from apps.developer import tokens
from apps.developer.auth import PersonalTokenAuthentication
from apps.developer.models import ApiToken

from ..factories import fund, make_checker

SCOPES = ["read", "rent", "stake", "vote", "transfer"]


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_the_page_shows_a_new_token_once_and_keeps_only_its_digest(logged_in, user):
    response = logged_in.post("/developer/", {"name": "laptop", "scopes": ["read", "rent"], "expires_in_days": "30"})
    assert response.status_code == 200
    raw = re.search(r"ath_[0-9a-f]{8}_[A-Za-z0-9_-]+", response.content.decode()).group(0)
    token = ApiToken.objects.get(user=user)
    assert token.scopes == ["read", "rent"] and token.expires_at > timezone.now() + timedelta(days=29)
    assert raw not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    # Shown once: the list shows only the public prefix.
    page = logged_in.get("/developer/").content.decode()
    assert raw not in page and f"ath_{token.prefix}_" in page

    assert bearer(raw).get("/api/wallet/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert "never" not in logged_in.get("/developer/").content.decode().split("token-list")[1]


def test_a_bad_form_is_refused_with_a_message(logged_in, user):
    response = logged_in.post("/developer/", {"name": "", "scopes": []})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_a_token_acts_as_its_owner(user, other_user):
    _, raw = tokens.issue(user, "script", ["read"])
    data = bearer(raw).get("/api/wallet/").json()
    assert data["account"]["address"] == user.wallet.address


def test_revoked_and_expired_tokens_are_refused_at_once(logged_in, user):
    token, raw = tokens.issue(user, "script", ["read"])
    client = bearer(raw)
    assert client.get("/api/wallet/").status_code == 200
    logged_in.post(f"/developer/tokens/{token.pk}/revoke/")
    refused = client.get("/api/wallet/")
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]

    expiring, raw2 = tokens.issue(user, "short", ["read"], expires_in_days=1)
    ApiToken.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert bearer(raw2).get("/api/wallet/").status_code == 401
    assert bearer("ath_00000000_notatoken").get("/api/wallet/").status_code == 401


def test_someone_else_cannot_revoke_my_token(client, user, other_user):
    token, raw = tokens.issue(user, "script", ["read"])
    client.force_login(other_user)
    client.post(f"/developer/tokens/{token.pk}/revoke/")
    assert bearer(raw).get("/api/wallet/").status_code == 200


def test_scopes_gate_changes(user):
    fund(user.wallet, 5_000_000)
    read_only = bearer(tokens.issue(user, "r", ["read"])[1])
    refused = read_only.post("/api/wallet/send/", {"to_address": user.wallet.address, "amount": "1"}, format="json")
    assert refused.status_code == 403 and "'transfer' scope" in refused.json()["detail"]
    transfer = bearer(tokens.issue(user, "t", ["transfer"])[1])
    other = make_checker()[0].operator
    from apps.accounts.services import open_wallet

    to = open_wallet(other).address
    sent = transfer.post("/api/wallet/send/", {"to_address": to, "amount": "1500000"}, format="json")
    assert sent.status_code == 201, sent.content
    # ... and nothing else: a transfer token cannot read.
    assert transfer.get("/api/wallet/").status_code == 403


# What each change needs, written out here independently of the server's table.
EXPECTED_WRITE_SCOPE = [
    ("/api/wallet/send/", "transfer"),
    ("/api/wallet/faucet/", "transfer"),
    ("/api/marketplace/", "rent"),
    ("/api/staking/", "stake"),
    ("/api/governance/", "vote"),
]


def _expected(path: str, method: str) -> str | None:
    if path.startswith("/api/agent/"):
        return None
    if method == "GET":
        return "read"
    return next((scope for prefix, scope in EXPECTED_WRITE_SCOPE if path.startswith(prefix)), None)


def test_every_route_of_the_schema_is_gated_by_its_scope(user):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    clients = {scope: bearer(tokens.issue(user, scope, [scope])[1]) for scope in SCOPES}
    checked = 0
    for path, operations in schema["paths"].items():
        url = re.sub(r"\{[^}]+\}", "1", path)
        view = resolve(url).func.view_class
        if PersonalTokenAuthentication not in view.authentication_classes:
            # Routes with credentials of their own (agents) or none at all
            # (public, read-only data): nothing there changes on a token's word.
            assert path.startswith("/api/agent/") or set(operations) <= {"get", "head", "options"}, path
            continue
        for method in operations:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            need = _expected(path, method.upper())
            for scope, client in clients.items():
                response = getattr(client, method)(url, {}, format="json") if method != "get" else client.get(url)
                body = response.content.decode(errors="replace")
                if need == scope:
                    assert response.status_code not in (401, 403) or "scope" not in body, (path, method, scope, body)
                    assert response.status_code != 401, (path, method, scope)
                else:
                    assert response.status_code in (401, 403), (path, method, scope, response.status_code)
                checked += 1
    assert checked > 100


def test_the_schema_documents_the_bearer_scheme():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    scheme = schema["components"]["securitySchemes"]["personalToken"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"


def test_agent_tokens_and_personal_tokens_stay_apart(user):
    checker, agent_raw = make_checker(user)
    _, raw = tokens.issue(user, "all", SCOPES)
    assert bearer(raw).get("/api/agent/me/").status_code in (401, 403)
    assert bearer(agent_raw).get("/api/wallet/").status_code in (401, 403)


def test_each_token_has_its_own_rate_limit(user, settings):
    settings.API_TOKEN_RATE = "3/minute"
    first = bearer(tokens.issue(user, "a", ["read"])[1])
    second = bearer(tokens.issue(user, "b", ["read"])[1])
    assert [first.get("/api/wallet/").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert second.get("/api/wallet/").status_code == 200


def test_tokens_never_reach_the_logs(user, caplog):
    token, raw = tokens.issue(user, "secret", ["read"])
    caplog.set_level(logging.DEBUG)
    bearer(raw).get("/api/wallet/")
    bearer(raw).post("/api/wallet/send/", {}, format="json")
    tokens.revoke(user, token.pk)
    bearer(raw).get("/api/wallet/")
    # The secret is everything after "ath_<id>_"; it may itself hold "_" (URL-safe base64).
    secret = raw.split("_", 2)[2]
    assert caplog.records and raw not in caplog.text and secret and secret not in caplog.text


def test_a_revoked_token_gets_no_replayed_answer_for_an_idempotency_key(user):
    # The idempotency layer answers a repeated key before the view (and its
    # authentication) runs: a revoked token must still be refused, not replayed.
    fund(user.wallet, 5_000_000)
    token, raw = tokens.issue(user, "t", ["transfer"])
    to = make_checker()[0].operator
    from apps.accounts.services import open_wallet

    body = {"to_address": open_wallet(to).address, "amount": "1000000"}
    client = bearer(raw)
    first = client.post("/api/wallet/send/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201
    assert client.post("/api/wallet/send/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1").status_code == 201
    tokens.revoke(user, token.pk)
    again = client.post("/api/wallet/send/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 401 and "revoked" in again.json()["detail"]
    assert "Idempotent-Replayed" not in again


def test_a_malformed_bearer_header_is_a_401_with_its_message():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer ath_1 ath_2")
    response = client.get("/api/wallet/")
    assert response.status_code == 401 and "Bearer <token>" in response.json()["detail"]

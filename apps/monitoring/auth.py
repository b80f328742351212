"""Agent authentication: ``Authorization: Agent <token>``.

A token acts for exactly one GPU node or one checker node; the permission
classes below make a node token useless on checker endpoints and the other
way round, and every view reads the node or checker from the token, never
from the request body.
"""

import threading
from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.db import connections, router, transaction
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from apps.core.models import AgentToken, hash_token

KEYWORD = "Agent"
TOUCH_EVERY = timedelta(minutes=1)


class AgentTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        view = (request.parser_context or {}).get("view")
        token = agent_token(request, cached=getattr(view, "token_cache", False))
        return None if token is None else (AnonymousUser(), token)

    def authenticate_header(self, request):
        return KEYWORD


def agent_token(request, *, cached: bool = False) -> AgentToken | None:
    """The agent token the request carries (``Authorization: Agent <token>``),
    ``None`` when it carries none, ``AuthenticationFailed`` when it is not one.

    ``cached``: for a view (``token_cache = True``) whose write requires the
    token to still act for the agent (calling ``forget`` when it no longer
    does) and records the token's use itself, in the write's own transaction
    (``token.used_at``: when, or ``None`` when recorded less than a minute
    ago). A token this process has seen before then costs no query, however
    long ago (an agent posts every 15 s, and behind a load balancer a
    process sees the same agent far less often than once a minute), and one
    it has not costs one query and no transaction of its own. Everywhere
    else a revoked token must fail at once, so it is looked up every time
    and its use recorded here."""
    header = authentication.get_authorization_header(request).decode(errors="replace").split()
    if not header or header[0] != KEYWORD:
        return None
    if len(header) != 2:
        raise exceptions.AuthenticationFailed("Send 'Authorization: Agent <token>'.")
    key_hash = hash_token(header[1])
    now = timezone.now()
    if cached and (hit := _seen.get(key_hash)) is not None:
        token = AgentToken.from_db(None, _LOADED, hit[:3])
        token.used_at = None
        if hit[3] < now - TOUCH_EVERY:
            token.used_at = now
            _seen[key_hash] = (*hit[:3], now)
        return token
    found = _lookup(key_hash, stale_before=now - TOUCH_EVERY)
    if found is None:
        raise exceptions.AuthenticationFailed("Unknown agent token.")
    token, stale = found
    if cached:
        token.used_at = now if stale else None
        _remember(key_hash, token, now)
    elif stale:
        _touch(token.pk, now)
    return token


_LOADED = ("id", "node_id", "checker_id")
_sql: dict[str, tuple[str, str]] = {}


def _statements(connection) -> tuple[str, str]:
    if connection.vendor not in _sql:
        q, meta = connection.ops.quote_name, AgentToken._meta
        table, used = q(meta.db_table), q(meta.get_field("last_used_at").column)
        columns = ", ".join(q(meta.get_field(f).column) for f in ("id", "node", "checker"))
        _sql[connection.vendor] = (
            f"SELECT {columns}, ({used} IS NULL OR {used} < %s) FROM {table} "
            f"WHERE {q(meta.get_field('key_hash').column)} = %s",
            f"UPDATE {table} SET {used} = %s WHERE {q(meta.pk.column)} = %s",
        )
    return _sql[connection.vendor]


def _lookup(key_hash: str, *, stale_before) -> tuple[AgentToken, bool] | None:
    """The token with this hash (only its id and what it acts for are loaded;
    ``token.node`` and ``token.checker`` load on first use), and whether its
    last-used time is older than ``stale_before``.

    Plain SQL, built from the model's own table and column names: every agent
    request starts here, and the ORM took twenty times longer to build the
    query and the objects than the database took to answer it."""
    connection = connections[router.db_for_read(AgentToken)]
    select, _ = _statements(connection)
    with connection.cursor() as cursor:
        cursor.execute(select, [connection.ops.adapt_datetimefield_value(stale_before), key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    return AgentToken.from_db(connection.alias, _LOADED, row[:3]), bool(row[3])


def _touch(token_id: int, now) -> None:
    connection = connections[router.db_for_write(AgentToken)]
    _, update = _statements(connection)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(update, [connection.ops.adapt_datetimefield_value(now), token_id])


# Tokens this process has seen: hash -> (id, node, checker, when this
# process last had the token's use recorded). Only for views whose write
# re-checks the token itself (``token_cache``; heartbeats: see
# ``ingest.store_heartbeats``), so an entry may live as long as the process:
# what it says about a token never changes, and a revoked token's entry
# writes nothing and is forgotten. About 200 bytes an entry; past the
# limit the oldest entries go first.
_seen: dict[str, tuple[int, int | None, int | None, object]] = {}
SEEN_MAX = 100_000


_evicting = threading.Lock()


def _remember(key_hash: str, token: AgentToken, now) -> None:
    with _evicting:  # request threads of one process share the cache
        while len(_seen) >= SEEN_MAX:
            _seen.pop(next(iter(_seen)), None)
        _seen[key_hash] = (token.pk, token.node_id, token.checker_id, now)


def forget(token_id: int) -> None:
    """Drop a token from this process's cache (it was revoked)."""
    for key, hit in list(_seen.items()):
        if hit[0] == token_id:
            _seen.pop(key, None)


class IsNodeAgent(permissions.BasePermission):
    message = "This endpoint needs a provider agent's token."

    def has_permission(self, request, view):
        return isinstance(request.auth, AgentToken) and request.auth.node_id is not None


class IsCheckerAgent(permissions.BasePermission):
    message = "This endpoint needs a checker agent's token."

    def has_permission(self, request, view):
        return isinstance(request.auth, AgentToken) and request.auth.checker_id is not None


class AgentTokenScheme(OpenApiAuthenticationExtension):
    """Documents the agent scheme in the OpenAPI schema."""

    target_class = "apps.monitoring.auth.AgentTokenAuthentication"
    name = "agentToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Agent <token>`: the token shown once when the node or checker was registered.",
        }

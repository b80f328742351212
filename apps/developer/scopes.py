"""Which scope an API request needs: one table, read by the token
authentication on every API route.

Reading (GET, HEAD, OPTIONS) needs ``read``. A change needs the scope of
the area it is in; a change in an area not listed is refused to tokens
altogether (deny by default: a new endpoint is closed to scripts until it
is placed here)."""

from .models import Scope

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

# (path prefix under /api/, scope its changes need), longest prefix first.
WRITE_SCOPES: list[tuple[str, str]] = [
    ("/api/wallet/send/", Scope.TRANSFER),
    ("/api/wallet/faucet/", Scope.TRANSFER),
    ("/api/marketplace/", Scope.RENT),
    ("/api/staking/", Scope.STAKE),
    ("/api/governance/", Scope.VOTE),
]

# Never open to a personal token: a token cannot mint or list tokens, and
# the agents' API has credentials of its own.
CLOSED = ("/api/developer/tokens/", "/api/agent/")


def required_scope(path: str, method: str) -> str | None:
    """The scope a request needs, or None when no token may make it."""
    if path.startswith(CLOSED):
        return None
    if method.upper() in SAFE_METHODS:
        return Scope.READ
    for prefix, scope in WRITE_SCOPES:
        if path.startswith(prefix):
            return scope
    return None

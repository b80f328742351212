"""The API's rate limits, counted as the forms' are (``ratelimit.count``).

DRF's own throttles keep each client's recent request times as a list in the
cache, which they read, extend and write back whole. Two web processes
answering the same client at the same moment each write back the list they
read plus their own request, and one of the two requests is lost: with N
workers a busy client gets up to N times its rate. Here a request is one
atomic increment of a counter per client and window (on Redis one round
trip, where DRF's list cost two), so every worker counts against the same
number.

The window is fixed (a minute runs from :00 to :59), not sliding: a client
may spend its limit at the end of one window and again at the start of the
next, up to twice the rate over a short span and never more on average,
which is what these limits are for (a runaway agent or script, not exact
metering). Rates are DRF's settings (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``,
"120/minute"), and a refusal is DRF's 429 with ``Retry-After``.
"""

from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from . import ratelimit

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """(requests, seconds) from a rate such as "600/minute" or "30/h"."""
    count, _sep, unit = rate.partition("/")
    return int(count), PERIODS[unit[:1] or "m"]


class WindowThrottle(BaseThrottle):
    """A limit per client (``ident``) and ``scope``, at ``rate`` or the
    scope's rate in the settings. A request whose ``ident`` is ``None``, or
    whose scope has no rate, is not limited."""

    scope = ""
    rate: str | None = None

    def get_rate(self) -> str | None:
        return self.rate or api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def ident(self, request, view) -> str | None:
        """Who is counted: the account when logged in, else the client's
        address (its /64 for IPv6), as the forms' limits count them."""
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return f"user-{user.pk}"
        return ratelimit.address_key(ratelimit.client_ip(request))

    def allow_request(self, request, view) -> bool:
        rate, key = self.get_rate(), self.ident(request, view)
        if rate is None or key is None:
            return True
        limit, period = parse_rate(rate)
        allowed, self.retry = ratelimit.hit(f"api-{self.scope}", key, limit, period)
        return allowed

    def wait(self) -> float:
        return self.retry


class ScopedThrottle(WindowThrottle):
    """The view's ``throttle_scope`` names the limit (as DRF's ScopedRateThrottle)."""

    def allow_request(self, request, view) -> bool:
        self.scope = getattr(view, "throttle_scope", "")
        return super().allow_request(request, view)

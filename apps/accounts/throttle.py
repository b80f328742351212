"""Limits on logging in, signing up and the demo faucet, per client address
(``apps.platform.ratelimit.client_ip``: ``X-Forwarded-For`` counts only as far
as ``TRUSTED_PROXIES`` vouch for it) and per account.

Log-in
------
Guessing passwords must stay slow without letting anyone lock someone else
out. Three counters, all in the cache (Redis in production, shared by every
worker), keyed by the account name as typed (lower-cased, whether or not
such an account exists, so the answers say nothing about which do):

* **(account, address) failures, with exponential lockout.** After
  ``LOGIN_FAILURES_BEFORE_LOCKOUT`` failures for one account from one
  address, that address may not try that account for 1 minute, then 2, 4,
  ... up to an hour after each further failure; the count is forgotten a
  day after the last failure, or at once when the right password is given
  from that address. Only attempts from that address lock it, so nobody can
  lock the owner out from another address; an attacker who forged
  ``X-Forwarded-For`` is still counted under the address the trusted proxy
  saw.
* **Failures per address, across accounts.** ``LOGIN_FAILURES_PER_ADDRESS``
  failed attempts in a 15-minute window, whatever the usernames, and the
  address is refused for the rest of the window: one address cannot spray
  a common password over many accounts. The attempt is counted before the
  password is checked (atomically) and given back when it succeeds, so a
  burst of parallel requests cannot slip past the count.
* **A ceiling per account, across addresses.** Many addresses each staying
  under the first limit still add up. Once an account has
  ``LOGIN_FAILURES_PER_ACCOUNT`` failures in an hour, addresses that have
  themselves failed on it must wait for the hour to end; an address with no
  failure on that account is still let in. The ceiling only slows a
  distributed guesser down (one more guess per fresh address); it never
  locks out the owner at an address that has not failed, which is what an
  account-wide lockout would let any stranger do.

A refused attempt never reaches the password check, so even the right
password waits. Each limit logs one WARNING on the ``aethir.security``
logger with the address and the account when it trips.

What remains: clients behind one NAT share an address, so one of them can
use up the per-address limit (not the per-account lockout of the others).
"""

import time

from django.conf import settings
from django.core.cache import cache

from apps.platform import ratelimit
from apps.platform.ratelimit import security_log

from . import services

LOCKOUT_FIRST = 60  # seconds, at the threshold; doubled after each further failure
LOCKOUT_MAX = 60 * 60
PAIR_MEMORY = 24 * 60 * 60
ADDRESS_WINDOW = 15 * 60
ACCOUNT_WINDOW = 60 * 60
SIGNUP_WINDOW = 60 * 60
FAUCET_WINDOW = 24 * 60 * 60


class Refused(Exception):
    """A limit refused the request; ``retry`` is in seconds."""

    def __init__(self, message: str, retry: int):
        super().__init__(message)
        self.retry = max(1, int(retry))


def minutes(seconds: int) -> str:
    n = seconds // 60 + 1
    return f"{n} minute{'s' if n != 1 else ''}"


def _account(username) -> str:
    return str(username or "")[:150].strip().lower()


def _pair_key(account: str, address: str) -> str:
    return f"login-pair:{account}:{address}"


# --- Log-in -----------------------------------------------------------------


def check_login(request, username) -> int | None:
    """Before the password is checked: seconds to wait, or None to go on.
    Counts the attempt against the address (see ``login_failed``)."""
    ip = ratelimit.client_ip(request)
    address, account = ratelimit.address_key(ip), _account(username)
    now = time.time()
    pair = cache.get(_pair_key(account, address)) or {}
    if pair.get("until", 0) > now:
        return int(pair["until"] - now) + 1
    failures = ratelimit.peek("login-account", account, ACCOUNT_WINDOW)
    if pair.get("failures") and failures >= settings.LOGIN_FAILURES_PER_ACCOUNT:
        return ACCOUNT_WINDOW - int(now) % ACCOUNT_WINDOW
    n, retry = ratelimit.count("login-address", address, ADDRESS_WINDOW)
    if n > settings.LOGIN_FAILURES_PER_ADDRESS:
        if n == settings.LOGIN_FAILURES_PER_ADDRESS + 1:
            security_log.warning(
                "log-in limit: %s failed %d log-ins in %d minutes (last for account %r); refused for %d s",
                ip,
                settings.LOGIN_FAILURES_PER_ADDRESS,
                ADDRESS_WINDOW // 60,
                account,
                retry,
            )
        return retry
    return None


def login_failed(request, username) -> None:
    ip = ratelimit.client_ip(request)
    address, account = ratelimit.address_key(ip), _account(username)
    key = _pair_key(account, address)
    pair = cache.get(key) or {}
    failures = pair.get("failures", 0) + 1
    pair = {"failures": failures, "until": 0}
    over = failures - settings.LOGIN_FAILURES_BEFORE_LOCKOUT
    if over >= 0:
        lockout = min(LOCKOUT_FIRST * 2 ** min(over, 20), LOCKOUT_MAX)
        pair["until"] = time.time() + lockout
        security_log.warning(
            "log-in lockout: account %r from %s after %d failures; this address waits %d s",
            account,
            ip,
            failures,
            lockout,
        )
    cache.set(key, pair, timeout=PAIR_MEMORY)
    n, _ = ratelimit.count("login-account", account, ACCOUNT_WINDOW)
    if n == settings.LOGIN_FAILURES_PER_ACCOUNT:
        security_log.warning(
            "log-in ceiling: account %r failed %d log-ins in an hour (last from %s); "
            "addresses that failed on it wait for the hour to end",
            account,
            n,
            ip,
        )


def login_succeeded(request, username) -> None:
    address = ratelimit.address_key(ratelimit.client_ip(request))
    cache.delete(_pair_key(_account(username), address))
    ratelimit.undo("login-address", address, ADDRESS_WINDOW)  # only failures count against the address


# --- Sign-up and the faucet -------------------------------------------------


def check_signup(request) -> None:
    """Count a sign-up from the client's address; raises Refused past the limit."""
    ip = ratelimit.client_ip(request)
    limit = settings.SIGNUPS_PER_ADDRESS_PER_HOUR
    n, retry = ratelimit.count("signup", ratelimit.address_key(ip), SIGNUP_WINDOW)
    if n > limit:
        if n == limit + 1:
            security_log.warning(
                "sign-up limit: %s signed up %d accounts within the hour; refused for %d s", ip, limit, retry
            )
        raise Refused(f"Too many sign-ups from your address. Try again in {minutes(retry)}.", retry)


def claim_faucet(request):
    """``services.claim_faucet`` for ``request.user``, also limited per client
    address across accounts, so new accounts cannot drain the faucet. Only
    claims that pay count: a refused one gives its place back."""
    ip = ratelimit.client_ip(request)
    address = ratelimit.address_key(ip)
    limit = settings.FAUCET_CLAIMS_PER_ADDRESS_PER_DAY
    n, retry = ratelimit.count("faucet-address", address, FAUCET_WINDOW)
    if n > limit:
        if n == limit + 1:
            security_log.warning(
                "faucet limit: %s claimed %d times today (last for account %r); refused for %d s",
                ip,
                limit,
                request.user.get_username(),
                retry,
            )
        raise Refused(f"The faucet has paid {limit} times to your address today; try again in {minutes(retry)}.", retry)
    try:
        return services.claim_faucet(request.user)
    except BaseException:
        ratelimit.undo("faucet-address", address, FAUCET_WINDOW)
        raise

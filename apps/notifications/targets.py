"""Where a webhook may be sent: HTTPS to a public address, unless the
operator opened plain HTTP (``WEBHOOKS_ALLOW_HTTP``, development) or some
ranges (``WEBHOOKS_ALLOW_NETS``, e.g. 127.0.0.0/8 for a local receiver).

The same address policy as the checker agents: a person must not be able
to aim the server at its own loopback, its private network or the cloud's
metadata service. The host is resolved and checked at every send and the
connection goes to the address that was checked, so a second DNS answer
cannot swap in an inner address."""

import ipaddress
import socket
import threading

from django.conf import settings
from django.utils.translation import gettext as _

from apps.core.errors import Refused
from apps.monitoring.agents.addresses import AddressPolicy, Target, parse_endpoint, parse_nets
from apps.monitoring.agents.addresses import Refused as AddressRefused


def policy() -> AddressPolicy:
    return AddressPolicy(allow=parse_nets(settings.WEBHOOKS_ALLOW_NETS))


def parse(url: str) -> Target:
    """The URL as a target, or Refused with the reason."""
    try:
        target = parse_endpoint((url or "").strip())
    except AddressRefused as exc:
        raise Refused(str(exc).replace("endpoint", "URL"), field="url") from None
    if target.scheme != "https" and not settings.WEBHOOKS_ALLOW_HTTP:
        raise Refused(_("Webhook URLs must use HTTPS."), field="url")
    return target


def _getaddrinfo(host: str, port: int, timeout: float | None):
    """``socket.getaddrinfo``, given up after ``timeout`` seconds: the
    resolver has no timeout of its own to pass, and a name server chosen by
    whoever registered the endpoint may answer as slowly as it likes. A
    lookup given up on finishes on its own thread and is dropped."""
    if timeout is None:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    outcome: dict = {}
    done = threading.Event()

    def look_up():
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=look_up, name="webhook-resolve", daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError("timed out")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["infos"]


def resolve(target: Target, timeout: float | None = None) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address to connect to: every address the host has must be allowed.
    ``timeout``: seconds the name lookup may take."""
    try:
        ips = [ipaddress.ip_address(target.host)]
    except ValueError:
        try:
            infos = _getaddrinfo(target.host, target.port, timeout)
        except (OSError, UnicodeError) as exc:
            raise Refused(_("Cannot resolve %(host)s: %(error)s") % {"host": target.host, "error": exc}) from None
        ips = list(dict.fromkeys(ipaddress.ip_address(i[4][0].split("%", 1)[0]) for i in infos))
    p = policy()
    for ip in ips:
        why = p.refusal(ip)
        if why:
            raise Refused(_("Refused target: %(why)s.") % {"why": why}, field="url")
    if not ips:
        raise Refused(_("%(host)s resolves to no address.") % {"host": target.host}, field="url")
    return ips[0]


def check(url: str) -> Target:
    target = parse(url)
    resolve(target)
    return target

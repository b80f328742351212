"""Where a checker agent may open connections.

A node's endpoint is whatever its provider declared, so probing it is a
request the provider aims: at the checker's own machine (loopback), its
private network, or the cloud's metadata service. A checker resolves the
endpoint's host itself, refuses every address outside the public internet
unless its operator allowed that range (``--allow-net``, ``AGENT_ALLOW_NETS``),
and then connects to the address it checked, never to the name again, so a
second DNS answer cannot swap in another address between check and connect.
"""

import asyncio
import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ENV_VAR = "AGENT_ALLOW_NETS"
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))

# Cloud metadata services: they hand out credentials to whoever asks from
# the machine. Some sit in ranges an operator may well allow (link-local,
# 100.64/10), one (Azure's) even on a public address, so they stay refused
# inside an allowed range unless allowed by themselves (a /32 or /128).
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.169.253",
        "100.100.100.200",
        "168.63.129.16",
        "192.0.0.192",
        "fd00:ec2::254",
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """A target the policy does not allow; the message says why."""


def parse_nets(text: str) -> tuple[Network, ...]:
    """``"127.0.0.0/8, 10.1.0.0/16"`` -> networks (ValueError on a bad one)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


def _embedded_v4(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to the same host (mapped,
    6to4, NAT64), which is what the connection really reaches."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class AddressPolicy:
    allow: tuple[Network, ...] = ()  # ranges refused by default that the operator opened
    public: bool = True  # False: only the allowed ranges (a demo that probes its own loopback nodes)

    @classmethod
    def from_env(cls, extra: list[str] | tuple[str, ...] = (), environ=None) -> "AddressPolicy":
        environ = os.environ if environ is None else environ
        nets = parse_nets(environ.get(ENV_VAR, ""))
        for text in extra:
            nets += parse_nets(text)
        return cls(allow=nets)

    @classmethod
    def loopback_only(cls) -> "AddressPolicy":
        return cls(allow=LOOPBACK, public=False)

    def _allowed_by(self, ip: Address) -> Network | None:
        return next((n for n in self.allow if n.version == ip.version and ip in n), None)

    def refusal(self, ip: Address) -> str | None:
        """Why a connection to ``ip`` is refused, or ``None`` when it is allowed."""
        inner = _embedded_v4(ip)
        if inner is not None and inner != ip:
            why = self.refusal(inner)
            if why:
                return f"{ip} reaches {inner}: {why}"
        net = self._allowed_by(ip)
        if ip in METADATA and not (net and net.num_addresses == 1):
            return f"{ip} is a cloud metadata address"
        if net is not None:
            return None
        if not self.public:
            return f"{ip} is outside the allowed ranges"
        for test, what in (
            (ip.is_unspecified, "unspecified"),
            (ip.is_loopback, "loopback"),
            (ip.is_link_local, "link-local"),
            (ip.is_multicast, "multicast"),
            (ip.is_private, "private"),
            (ip.is_reserved, "reserved"),
            (not ip.is_global, "not a public address"),
        ):
            if test:
                return f"{ip} is {what}"
        return None

    async def resolve(self, host: str, port: int, timeout: float) -> Address:
        """The address to connect to for ``host``: every address the name
        resolves to must be allowed (a name that also points inward is
        hostile), and the first one is used."""
        try:
            ips = [ipaddress.ip_address(host.strip("[]").split("%", 1)[0])]
        except ValueError:
            loop = asyncio.get_running_loop()
            try:
                infos = await asyncio.wait_for(
                    loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP), timeout
                )
            except (OSError, UnicodeError) as exc:
                raise Refused(f"cannot resolve {host!r}: {exc}") from None
            ips = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos))
            if not ips:
                raise Refused(f"{host!r} resolves to no address")
        for ip in ips:
            why = self.refusal(ip)
            if why:
                raise Refused(why)
        return ips[0]


@dataclass(frozen=True)
class Target:
    """A node's endpoint, parsed: what to connect to and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str  # with the query, if any
    endpoint: str = field(repr=False, default="")

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def url_for(self, ip: Address) -> str:
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def parse_endpoint(endpoint) -> Target:
    """The endpoint a provider declared, or Refused: only plain http(s)
    URLs with a host and a valid port, and no credentials in them."""
    if not isinstance(endpoint, str) or len(endpoint) > 2048:
        raise Refused("the endpoint is not a URL")
    try:
        url = urlsplit(endpoint)
        port = url.port
    except ValueError as exc:
        raise Refused(f"the endpoint is not a valid URL ({exc})") from None
    if url.scheme not in ("http", "https"):
        raise Refused(f"the endpoint's scheme {url.scheme!r} is not http or https")
    if not url.hostname:
        raise Refused("the endpoint has no host")
    if url.username is not None or url.password is not None:
        raise Refused("the endpoint carries credentials")
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    return Target(url.scheme, url.hostname, port or (443 if url.scheme == "https" else 80), path, endpoint)


# A host name or IPv4 address, or an IPv6 address in brackets.
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")


def parse_host_port(endpoint) -> tuple[str, int]:
    """``(host, port)`` of a workload endpoint as a node's agent reports it
    (``host:port``, ``[v6 address]:port``), or Refused. The host is then
    resolved and checked by the policy like a node's own endpoint."""
    if not isinstance(endpoint, str) or len(endpoint) > 300:
        raise Refused("the endpoint is not host:port")
    host, sep, port = endpoint.rpartition(":")
    if not sep or not _HOST.fullmatch(host):
        raise Refused("the endpoint is not host:port")
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
        raise Refused("the endpoint has no valid port")
    return host.strip("[]"), int(port)

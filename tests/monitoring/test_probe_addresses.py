"""Where a checker's probes may go: the public internet, plus only the
ranges its operator opened; never a cloud metadata service unless named
by itself; an IPv6 form of an address is judged as the address it reaches."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.monitoring.agents.addresses import (
    LOOPBACK,
    METADATA,
    AddressPolicy,
    Refused,
    parse_endpoint,
    parse_nets,
)

INWARD = [
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::1/128",
        "fe80::/10",
        "fc00::/7",
        "ff00::/8",
        "::/128",
    )
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "9.9.9.9", "2606:4700:4700::1111", "2001:4860:4860::8888"]


def addresses_in(net):
    return st.integers(0, net.num_addresses - 1).map(lambda i: net[i])


inward = st.sampled_from(INWARD).flatmap(addresses_in)
any_v4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)


@given(inward)
def test_inward_addresses_are_refused_by_default(ip):
    assert AddressPolicy().refusal(ip)


@given(inward)
def test_an_allowed_range_opens_its_addresses_but_metadata(ip):
    net = next(n for n in INWARD if ip in n)
    why = AddressPolicy(allow=(net,)).refusal(ip)
    if ip in METADATA:
        assert "metadata" in why
    else:
        assert why is None


@given(any_v4)
def test_an_ipv6_form_is_judged_as_the_ipv4_address_it_reaches(ip):
    policy = AddressPolicy()
    mapped = ipaddress.IPv6Address(f"::ffff:{ip}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(ip))
    if policy.refusal(ip):
        assert policy.refusal(mapped) and policy.refusal(nat64)


@given(any_v4)
def test_loopback_only_refuses_everything_else(ip):
    why = AddressPolicy.loopback_only().refusal(ip)
    assert (why is None) == (ip in LOOPBACK[0])


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    assert AddressPolicy().refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", sorted(map(str, METADATA)))
def test_metadata_addresses_are_refused_even_inside_allowed_ranges(address):
    ip = ipaddress.ip_address(address)
    wide = ipaddress.ip_network(f"{address}/{8 if ip.version == 4 else 16}", strict=False)
    assert "metadata" in AddressPolicy(allow=(wide,)).refusal(ip)
    assert AddressPolicy(allow=(ipaddress.ip_network(address),)).refusal(ip) is None


def test_the_allowed_ranges_come_from_the_environment_and_flags():
    policy = AddressPolicy.from_env(["10.1.0.0/16"], environ={"AGENT_ALLOW_NETS": "127.0.0.0/8, ::1/128"})
    assert policy.allow == parse_nets("127.0.0.0/8,::1/128,10.1.0.0/16")
    with pytest.raises(ValueError):
        AddressPolicy.from_env(["not-a-net"], environ={})


@pytest.mark.asyncio
async def test_a_name_is_checked_by_every_address_it_resolves_to():
    with pytest.raises(Refused, match="loopback"):
        await AddressPolicy().resolve("localhost", 80, timeout=2)
    assert (await AddressPolicy(allow=LOOPBACK).resolve("localhost", 80, timeout=2)).is_loopback
    with pytest.raises(Refused, match="metadata"):
        await AddressPolicy(allow=parse_nets("169.254.0.0/16")).resolve("169.254.169.254", 80, timeout=2)


@pytest.mark.parametrize(
    "endpoint, why",
    [
        ("http://127.0.0.1:99999/health", "not a valid URL"),
        ("ftp://203.0.113.7/health", "scheme"),
        ("http://user:pw@203.0.113.7/health", "credentials"),
        ("http:///health", "no host"),
        (None, "not a URL"),
        ("http://[::1/health", "not a valid URL"),
    ],
)
def test_endpoints_that_are_not_plain_http_urls_are_refused(endpoint, why):
    with pytest.raises(Refused, match=why):
        parse_endpoint(endpoint)


def test_the_request_goes_to_the_checked_address_with_the_declared_host():
    target = parse_endpoint("http://gpu.example.com:9100/health?x=1")
    assert target.url_for(ipaddress.ip_address("203.0.113.7")) == "http://203.0.113.7:9100/health?x=1"
    assert target.host_header == "gpu.example.com:9100"
    v6 = parse_endpoint("https://[2001:db8::7]/health")
    assert v6.url_for(ipaddress.ip_address("2001:db8::7")) == "https://[2001:db8::7]:443/health"
    assert v6.host_header == "[2001:db8::7]"

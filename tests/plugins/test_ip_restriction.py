"""ip-restriction: address sets, address parsing, the client address behind trusted
proxies, allow/deny precedence, load-time checks, and the gateway answering 403."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from gateway_harness import HttpUpstream, http, start_gateway
from pydantic import ValidationError

from campusgate.config.model import PluginSpec
from campusgate.plugins.base import PluginEnv
from campusgate.plugins.registry import build_plugin, default_resources
from campusgate.proxy.addresses import AddressSet, client_address, parse_address
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext


def addr(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def aset(*cidrs: str) -> AddressSet:
    return AddressSet(ipaddress.ip_network(c, strict=False) for c in cidrs)


# ---------------------------------------------------------------- pure parts


@pytest.mark.parametrize("cidrs, address, inside", [
    (["10.0.0.0/8"], "10.255.255.255", True),
    (["10.0.0.0/8"], "11.0.0.0", False),
    (["10.0.0.0/8"], "9.255.255.255", False),
    (["192.0.2.7"], "192.0.2.7", True),
    (["192.0.2.7"], "192.0.2.8", False),
    (["192.0.2.0/25", "192.0.2.128/25"], "192.0.2.200", True),  # adjacent, merged
    (["10.0.0.0/8", "10.1.0.0/16", "172.16.0.0/12"], "172.31.0.1", True),  # nested
    (["10.0.0.0/8", "172.16.0.0/12"], "100.0.0.1", False),  # between two ranges
    (["2001:db8::/32"], "2001:db8:ffff::1", True),
    (["2001:db8::/32"], "2001:db9::1", False),
    (["0.0.0.0/0"], "2001:db8::1", False),  # the families stay apart
    (["::/0"], "192.0.2.1", False),
    ([], "192.0.2.1", False),
])
def test_address_set_membership(cidrs: list[str], address: str, inside: bool) -> None:
    assert (addr(address) in aset(*cidrs)) is inside


def test_an_empty_address_set_is_false() -> None:
    assert not aset()
    assert aset("::1")


@pytest.mark.parametrize("text, expected", [
    ("192.0.2.1", "192.0.2.1"),
    (" 192.0.2.1 ", "192.0.2.1"),
    ("192.0.2.1:8443", "192.0.2.1"),
    ("2001:db8::1", "2001:db8::1"),
    ("[2001:db8::1]", "2001:db8::1"),
    ("[2001:db8::1]:443", "2001:db8::1"),
    ("::ffff:192.0.2.1", "192.0.2.1"),  # IPv4-mapped: what dual-stack sockets report
    ("unknown", None),
    ("", None),
    ("[2001:db8::1", None),
    ("192.0.2.300", None),
])
def test_parse_address(text: str, expected: str | None) -> None:
    parsed = parse_address(text)
    assert (None if parsed is None else str(parsed)) == expected


PROXIES = aset("10.0.0.0/8", "2001:db8:ffff::/48")


def xff(*values: str) -> HeaderList:
    return [(b"x-forwarded-for", v.encode()) for v in values]


@pytest.mark.parametrize("peer, headers, expected", [
    # an untrusted peer is the client, whatever it claims
    ("198.51.100.7", xff("203.0.113.1"), "198.51.100.7"),
    # a trusted peer: the right-most untrusted entry; entries left of it are forgeable
    ("10.0.0.1", xff("192.0.2.66, 203.0.113.1"), "203.0.113.1"),
    ("10.0.0.1", xff("192.0.2.66, 203.0.113.1, 10.0.0.2"), "203.0.113.1"),
    # several header lines are one list, in order
    ("10.0.0.1", xff("192.0.2.66", "203.0.113.1, 10.9.9.9"), "203.0.113.1"),
    ("10.0.0.1", xff("203.0.113.1:5555"), "203.0.113.1"),
    # every entry a trusted proxy: the left-most
    ("10.0.0.1", xff("10.0.0.3, 10.0.0.2"), "10.0.0.3"),
    # a trusted peer without the header is itself the client
    ("10.0.0.1", [], "10.0.0.1"),
    ("2001:db8:ffff::5", xff("2001:db8:1::1"), "2001:db8:1::1"),
    ("::ffff:10.0.0.1", xff("203.0.113.1"), "203.0.113.1"),
    # garbage written where the client should be: unknown
    ("10.0.0.1", xff("203.0.113.1, unknown"), None),
    ("", [], None),
])
def test_client_address(peer: str, headers: HeaderList, expected: str | None) -> None:
    found = client_address(peer, headers, PROXIES)
    assert (None if found is None else str(found)) == expected


def test_without_trusted_proxies_forwarded_for_is_ignored() -> None:
    assert str(client_address("10.0.0.1", xff("203.0.113.1"), aset())) == "10.0.0.1"


# ---------------------------------------------------------------- the plugin


def ctx(peer: str, headers: HeaderList | None = None) -> RequestContext:
    return RequestContext("GET", "/x", "", headers or [], peer, "http", "h", "rid-1")


@pytest.mark.parametrize("config, peer, allowed", [
    ({"allow": ["192.0.2.0/24"]}, "192.0.2.9", True),
    ({"allow": ["192.0.2.0/24"]}, "198.51.100.9", False),
    ({"deny": ["192.0.2.0/24"]}, "192.0.2.9", False),
    ({"deny": ["192.0.2.0/24"]}, "198.51.100.9", True),
    # deny wins over allow when both match
    ({"allow": ["192.0.2.0/24"], "deny": ["192.0.2.128/25"]}, "192.0.2.200", False),
    ({"allow": ["192.0.2.0/24"], "deny": ["192.0.2.128/25"]}, "192.0.2.100", True),
    ({"allow": ["2001:db8::/32"]}, "2001:db8::1", True),
    ({"allow": ["2001:db8::/32"]}, "192.0.2.1", False),
    ({"deny": ["203.0.113.0/24"]}, "not-an-address", False),
])
async def test_allow_and_deny(config: dict[str, Any], peer: str, allowed: bool) -> None:
    answer = build_plugin("ip-restriction", config).access_now(ctx(peer))
    assert (answer is None) is allowed


async def test_refusal_is_a_403_in_the_error_shape_with_overridable_status_and_message() -> None:
    plugin = build_plugin("ip-restriction", {"deny": ["192.0.2.1"]})
    answer = plugin.access_now(ctx("192.0.2.1"))
    assert isinstance(answer, LocalResponse) and answer.status == 403
    assert json.loads(answer.body)["error"] == {
        "code": "forbidden", "message": "your IP address is not allowed", "request_id": "rid-1"}
    plugin = build_plugin("ip-restriction", {"deny": ["192.0.2.1"], "status": 401,
                                             "message": "campus network only"})
    answer = plugin.access_now(ctx("192.0.2.1"))
    assert isinstance(answer, LocalResponse) and answer.status == 401
    assert json.loads(answer.body)["error"]["message"] == "campus network only"


async def test_the_plugin_honours_the_trusted_proxies_setting() -> None:
    resources = default_resources()
    resources.trusted_proxies = (ipaddress.ip_network("10.0.0.0/8"),)
    plugin = build_plugin("ip-restriction", {"allow": ["203.0.113.0/24"]}, PluginEnv(resources))
    assert plugin.access_now(ctx("10.0.0.1", xff("203.0.113.5"))) is None
    assert plugin.access_now(ctx("10.0.0.1", xff("203.0.113.5, 198.51.100.1"))) is not None
    assert plugin.access_now(ctx("198.51.100.1", xff("203.0.113.5"))) is not None


@pytest.mark.parametrize("config, fault", [
    ({}, "set allow, deny or both"),
    ({"allow": ["192.0.2.0/33"]}, "allow: '192.0.2.0/33' is not an IP address"),
    ({"deny": ["campus"]}, "deny: 'campus'"),
    ({"deny": ["10.0.0.0/8"], "status": 200}, "status"),
    ({"deny": ["10.0.0.0/8"], "whitelist": []}, "whitelist"),
])
def test_bad_config_is_rejected_when_config_loads(config: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="ip-restriction", config=config)


# ---------------------------------------------------------------- through the gateway


async def test_end_to_end_behind_a_trusted_proxy() -> None:
    up = await HttpUpstream().start()
    gw = await start_gateway({"services": [
        {"name": "api", "url": f"http://{up.address}",
         "routes": [{"name": "api", "paths": ["/api"], "plugins": [
             {"name": "ip-restriction", "config": {"allow": ["203.0.113.0/24"]}}]}]},
    ]}, trusted_proxies=["127.0.0.1/32"])
    try:
        ok = await http(gw.port, "GET", "/api", [(b"x-forwarded-for", b"203.0.113.5")])
        assert ok.status == 200
        forged = await http(gw.port, "GET", "/api",
                            [(b"x-forwarded-for", b"203.0.113.5, 198.51.100.1")])
        assert forged.status == 403
        body = json.loads(forged.body)["error"]
        assert body["code"] == "forbidden"
        assert body["request_id"] == forged.header("x-request-id")
        assert len(up.requests) == 1
    finally:
        await gw.close()
        await up.close()


async def test_end_to_end_without_trusted_proxies_the_socket_peer_decides() -> None:
    up = await HttpUpstream().start()
    gw = await start_gateway({"plugins": [
        {"name": "ip-restriction", "config": {"deny": ["127.0.0.0/8"]}}],
        "services": [{"name": "api", "url": f"http://{up.address}",
                      "routes": [{"name": "api", "paths": ["/api"]}]}]})
    try:
        resp = await http(gw.port, "GET", "/api", [(b"x-forwarded-for", b"203.0.113.5")])
        assert resp.status == 403
        assert up.requests == []
    finally:
        await gw.close()
        await up.close()

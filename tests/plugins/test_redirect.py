"""redirect: location templates (checked at load, safe against open redirects), query
handling, the http -> https mode, and the gateway answering without the upstream."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from gateway_harness import HttpUpstream, http, start_gateway
from pydantic import ValidationError

from campusgate.config.model import PluginSpec
from campusgate.plugins.base import PluginEnv
from campusgate.plugins.redirect import parse_template, render
from campusgate.plugins.registry import build_plugin, default_resources
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext

# ---------------------------------------------------------------- templates


@pytest.mark.parametrize("location, path, query, params, expected", [
    ("https://new.example.edu/", "/a", "", {}, "https://new.example.edu/"),
    ("https://new.example.edu{path}", "/a/b", "", {}, "https://new.example.edu/a/b"),
    ("/v2{path}?{query}", "/users", "page=2", {}, "/v2/users?page=2"),
    ("/courses/{params.id}/home", "/c/7", "", {"id": "7"}, "/courses/7/home"),
    ("https://x.example.edu/{params.a}-{params.b}", "/", "", {"a": "1", "b": "2"},
     "https://x.example.edu/1-2"),
    ("/literal/{{braces}}", "/", "", {}, "/literal/{braces}"),
    # a path that would make a network-path reference ("//host") cannot leave the site
    ("{path}", "//evil.example.com/x", "", {}, "/evil.example.com/x"),
    ("{path}/", "/\\evil.example.com", "", {}, "/evil.example.com/"),
    ("https://new.example.edu{path}", "*", "", {}, "https://new.example.edu/*"),
])
def test_render(location: str, path: str, query: str, params: dict[str, str],
                expected: str) -> None:
    assert render(parse_template(location), path, query, params) == expected


@pytest.mark.parametrize("location, fault", [
    ("/x/{nope}", "unknown variable {nope}"),
    ("/x/{params.}", "unknown variable"),
    ("/x/{path!r}", "no format spec"),
    ("/x/{path:>10}", "no format spec"),
    ("/x/{path", "literal brace"),
    ("/x/}", "literal brace"),
    ("https://{params.tenant}.example.edu/", "cannot stand in the host"),
    ("https://example.edu{params.x}", "cannot stand in the host"),
    ("https://{path}", "no host"),
    ("new.example.edu/x", "absolute URL"),
    ("{query}", "absolute URL"),
    ("", "absolute URL"),
    ("/caf\u00e9", "printable ASCII"),
    ("/a b", "printable ASCII"),
])
def test_bad_templates_are_refused(location: str, fault: str) -> None:
    with pytest.raises(ValueError, match=fault):
        parse_template(location)


def test_a_missing_route_parameter_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        render(parse_template("/x/{params.id}"), "/", "", {})


# ---------------------------------------------------------------- the plugin


def ctx(path: str = "/old", query: str = "", *, scheme: str = "http",
        host: str = "gw.example.edu", peer: str = "192.0.2.1",
        headers: HeaderList | None = None, params: dict[str, str] | None = None,
        ) -> RequestContext:
    c = RequestContext("GET", path, query, headers or [], peer, scheme, host, "rid-1")
    c.params = params or {}
    return c


def location_of(answer: object) -> str:
    assert isinstance(answer, LocalResponse)
    headers = dict(answer.headers)
    return headers[b"location"].decode()


async def test_location_status_and_query() -> None:
    plugin = build_plugin("redirect", {"location": "/new/{params.id}", "status": 308,
                                       "keep_query": True})
    answer = plugin.access_now(ctx("/old/7", "a=1", params={"id": "7"}))
    assert isinstance(answer, LocalResponse) and answer.status == 308
    assert location_of(answer) == "/new/7?a=1"
    assert location_of(plugin.access_now(ctx("/old/7", params={"id": "7"}))) == "/new/7"


@pytest.mark.parametrize("config, query, expected", [
    ({"location": "/search?source=old", "keep_query": True}, "q=x", "/search?source=old&q=x"),
    ({"location": "/search", "keep_query": False}, "q=x", "/search"),
    ({"location": "/search?{query}"}, "q=x", "/search?q=x"),
])
async def test_query_handling(config: dict[str, Any], query: str, expected: str) -> None:
    assert location_of(build_plugin("redirect", config).access_now(ctx(query=query))) == expected


async def test_default_status_is_301() -> None:
    answer = build_plugin("redirect", {"location": "https://new.example.edu/"}).access_now(ctx())
    assert isinstance(answer, LocalResponse) and answer.status == 301


async def test_a_route_without_the_parameter_is_a_500_naming_it() -> None:
    answer = build_plugin("redirect", {"location": "/x/{params.id}"}).access_now(ctx())
    assert isinstance(answer, LocalResponse) and answer.status == 500
    assert "'id'" in json.loads(answer.body)["error"]["message"]


@pytest.mark.parametrize("host, path, query, expected", [
    ("gw.example.edu", "/a/b", "x=1", "https://gw.example.edu/a/b?x=1"),
    ("gw.example.edu:8080", "/", "", "https://gw.example.edu/"),
    ("[2001:db8::1]:8080", "/p", "", "https://[2001:db8::1]/p"),
])
async def test_https_mode_redirects_plain_http(host: str, path: str, query: str,
                                               expected: str) -> None:
    plugin = build_plugin("redirect", {"https": True})
    assert location_of(plugin.access_now(ctx(path, query, host=host))) == expected


async def test_https_mode_lets_https_through_and_believes_only_trusted_proxies() -> None:
    resources = default_resources()
    resources.trusted_proxies = (ipaddress.ip_network("10.0.0.0/8"),)
    plugin = build_plugin("redirect", {"https": True}, PluginEnv(resources))
    proto = [(b"x-forwarded-proto", b"https")]
    assert plugin.access_now(ctx(scheme="https")) is None
    assert plugin.access_now(ctx(peer="10.1.2.3", headers=proto)) is None
    assert plugin.access_now(ctx(peer="192.0.2.1", headers=proto)) is not None  # forged


async def test_https_mode_without_a_host_is_a_400() -> None:
    answer = build_plugin("redirect", {"https": True}).access_now(ctx(host=""))
    assert isinstance(answer, LocalResponse) and answer.status == 400


@pytest.mark.parametrize("config, fault", [
    ({}, "exactly one"),
    ({"location": "/x", "https": True}, "exactly one"),
    ({"location": "/x?{query}", "keep_query": True}, "added twice"),
    ({"location": "/x", "status": 302}, None),
    ({"location": "/x", "status": 300}, "status"),
    ({"location": "/x/{nope}"}, "unknown variable"),
    ({"location": "https://{params.t}.example.edu/"}, "host"),
])
def test_config_is_checked_when_it_loads(config: dict[str, Any], fault: str | None) -> None:
    if fault is None:
        PluginSpec(name="redirect", config=config)
        return
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="redirect", config=config)


# ---------------------------------------------------------------- through the gateway


async def test_end_to_end_redirect_never_reaches_the_upstream() -> None:
    up = await HttpUpstream().start()
    gw = await start_gateway({"services": [
        {"name": "legacy", "url": f"http://{up.address}",
         "routes": [{"name": "legacy", "paths": ["/old/{id}"], "plugins": [
             {"name": "redirect", "config": {"location": "/courses/{params.id}",
                                             "status": 302, "keep_query": True}}]}]}]})
    try:
        resp = await http(gw.port, "GET", "/old/42?tab=grades")
        assert resp.status == 302
        assert resp.header("location") == "/courses/42?tab=grades"
        head = await http(gw.port, "HEAD", "/old/42")
        assert (head.status, head.header("location")) == (302, "/courses/42")
        assert up.requests == []
    finally:
        await gw.close()
        await up.close()

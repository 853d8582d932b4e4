"""cors: preflights answered at the edge, origin checks, headers on every response
(the upstream's and the gateway's own), bad settings refused at load."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway_harness import HttpUpstream, UpstreamRequest, http, ok_response, start_gateway
from pydantic import ValidationError

from campusgate.config.model import PluginSpec
from campusgate.plugins.base import Plugin
from campusgate.plugins.registry import build_plugin
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext

SITE = b"https://app.example.edu"


def ctx(method: str = "GET", headers: HeaderList | None = None) -> RequestContext:
    return RequestContext(method, "/x", "", headers or [], "127.0.0.1", "http", "h", "rid-1")


def preflight(origin: bytes = SITE, extra: HeaderList | None = None) -> RequestContext:
    return ctx("OPTIONS", [(b"origin", origin), (b"access-control-request-method", b"PUT"),
                           *(extra or [])])


def cors(**config: Any) -> Plugin:
    return build_plugin("cors", config)


def answer_of(plugin: Plugin, c: RequestContext) -> LocalResponse:
    answer = plugin.access_now(c)
    assert isinstance(answer, LocalResponse)
    return answer


def after_response(plugin: Plugin, c: RequestContext, upstream: HeaderList | None = None,
                   status: int = 200) -> dict[bytes, list[bytes]]:
    headers = list(upstream or [])
    plugin.response(c, status, headers)
    out: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        out.setdefault(name, []).append(value)
    return out


# ---------------------------------------------------------------- preflight


async def test_preflight_from_an_allowed_origin_is_answered_204_with_every_header() -> None:
    plugin = cors(origins=["https://app.example.edu"], max_age=600)
    c = preflight(extra=[(b"access-control-request-headers", b"content-type, x-trace")])
    answer = answer_of(plugin, c)
    headers = dict(answer.headers)
    assert answer.status == 204
    assert headers[b"access-control-allow-origin"] == SITE
    assert headers[b"vary"] == b"Origin"
    assert headers[b"access-control-allow-methods"] == b"GET, HEAD, PUT, PATCH, POST, DELETE"
    assert headers[b"access-control-allow-headers"] == b"content-type, x-trace"  # echoed
    assert headers[b"access-control-max-age"] == b"600"
    assert b"access-control-allow-credentials" not in headers
    # the response phase (which also runs for local answers) must not add them twice
    assert after_response(plugin, c, answer.headers, 204)[b"access-control-allow-origin"] == [
        SITE]


async def test_preflight_with_configured_headers_lists_them_not_the_requested_ones() -> None:
    plugin = cors(origins=["*"], headers=["Authorization", "Content-Type"], methods=["get"])
    c = preflight(extra=[(b"access-control-request-headers", b"x-anything")])
    headers = dict(answer_of(plugin, c).headers)
    assert headers[b"access-control-allow-headers"] == b"Authorization, Content-Type"
    assert headers[b"access-control-allow-methods"] == b"GET"
    assert headers[b"access-control-allow-origin"] == b"*"
    assert b"vary" not in headers and b"access-control-max-age" not in headers


async def test_preflight_from_a_disallowed_origin_is_a_403_without_cors_headers() -> None:
    plugin = cors(origins=["https://app.example.edu"])
    answer = answer_of(plugin, preflight(b"https://evil.example.com"))
    assert answer.status == 403
    assert json.loads(answer.body)["error"]["code"] == "origin_not_allowed"
    assert all(not name.startswith(b"access-control-") for name, _ in answer.headers)


@pytest.mark.parametrize("method, headers", [
    ("OPTIONS", [(b"origin", SITE)]),  # no Access-Control-Request-Method: not a preflight
    ("OPTIONS", [(b"access-control-request-method", b"GET")]),  # no Origin
    ("GET", [(b"origin", SITE), (b"access-control-request-method", b"GET")]),
])
async def test_only_real_preflights_are_answered(method: str, headers: HeaderList) -> None:
    assert cors().access_now(ctx(method, headers)) is None


async def test_preflight_continue_lets_the_preflight_through() -> None:
    assert cors(preflight_continue=True).access_now(preflight()) is None


# ---------------------------------------------------------------- origins


@pytest.mark.parametrize("origins, origin, allowed", [
    (["https://app.example.edu"], b"https://app.example.edu", True),
    (["https://App.Example.EDU"], b"https://app.example.edu", True),  # without case
    (["https://app.example.edu"], b"https://app.example.edu:8443", False),
    (["https://app.example.edu"], b"http://app.example.edu", False),
    (["~https://[a-z]+\\.example\\.edu"], b"https://lms.example.edu", True),
    # a regex must match the whole origin, not a prefix of it
    (["~https://[a-z]+\\.example\\.edu"], b"https://lms.example.edu.evil.io", False),
    (["https://a.example.edu", "~https://b\\d\\.example\\.edu"], b"https://b7.example.edu",
     True),
    (["*"], b"null", True),
])
async def test_origin_matching(origins: list[str], origin: bytes, allowed: bool) -> None:
    plugin = cors(origins=origins)
    headers = after_response(plugin, ctx(headers=[(b"origin", origin)]))
    assert (b"access-control-allow-origin" in headers) is allowed


# ---------------------------------------------------------------- actual responses


async def test_star_without_credentials_is_sent_to_everyone_without_vary() -> None:
    plugin = cors(exposed_headers=["X-Total-Count"])
    for headers in ([], [(b"origin", SITE)]):
        out = after_response(plugin, ctx(headers=headers))
        assert out[b"access-control-allow-origin"] == [b"*"]
        assert out[b"access-control-expose-headers"] == [b"X-Total-Count"]
        assert b"vary" not in out


async def test_star_with_credentials_echoes_the_origin() -> None:
    plugin = cors(origins=["*"], credentials=True)
    out = after_response(plugin, ctx(headers=[(b"origin", SITE)]))
    assert out[b"access-control-allow-origin"] == [SITE]
    assert out[b"access-control-allow-credentials"] == [b"true"]
    assert out[b"vary"] == [b"Origin"]


async def test_disallowed_or_missing_origin_gets_only_vary() -> None:
    plugin = cors(origins=["https://app.example.edu"], exposed_headers=["X-A"])
    for headers in ([], [(b"origin", b"https://evil.example.com")]):
        out = after_response(plugin, ctx(headers=headers))
        assert out == {b"vary": [b"Origin"]}


async def test_the_gateway_policy_replaces_the_upstreams_cors_headers() -> None:
    plugin = cors(origins=["https://app.example.edu"], credentials=True)
    upstream = [(b"access-control-allow-origin", b"*"),
                (b"access-control-allow-credentials", b"false"),
                (b"vary", b"Accept-Encoding, origin"), (b"x-up", b"1")]
    out = after_response(plugin, ctx(headers=[(b"origin", SITE)]), upstream)
    assert out[b"access-control-allow-origin"] == [SITE]
    assert out[b"access-control-allow-credentials"] == [b"true"]
    assert out[b"vary"] == [b"Accept-Encoding, origin"]  # already varies on Origin
    assert out[b"x-up"] == [b"1"]


# ---------------------------------------------------------------- config


@pytest.mark.parametrize("config, fault", [
    ({"origins": ["https://app.example.edu/"]}, "no path"),
    ({"origins": ["app.example.edu"]}, "scheme://host"),
    ({"origins": ["~https://(unclosed"]}, "invalid origin regex"),
    ({"origins": []}, "origins"),
    ({"methods": ["GET POST"]}, "HTTP tokens"),
    ({"headers": ["X-Ok", "bad header"]}, "HTTP tokens"),
    ({"credentials": True, "headers": ["*"]}, "cannot contain"),
    ({"credentials": True, "exposed_headers": ["*"]}, "cannot contain"),
    ({"max_age": -1}, "max_age"),
    ({"origin": ["*"]}, "origin"),
])
def test_bad_config_is_rejected_when_config_loads(config: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="cors", config=config)


def test_cors_cannot_be_attached_to_a_consumer() -> None:
    from campusgate.config.model import Entities

    with pytest.raises(ValidationError, match="cannot be attached to a consumer"):
        Entities.model_validate({"consumers": [{"name": "c", "plugins": [{"name": "cors"}]}]})


# ---------------------------------------------------------------- through the gateway


async def _upstream_with_cors_headers(req: UpstreamRequest, writer: Any) -> None:
    writer.write(ok_response(b"data", headers=[(b"access-control-allow-origin", b"*")]))


async def test_end_to_end_preflight_actual_request_and_local_errors() -> None:
    up = await HttpUpstream(_upstream_with_cors_headers).start()
    cors_spec = {"name": "cors", "config": {"origins": ["https://app.example.edu"],
                                            "exposed_headers": ["X-Total-Count"]}}
    gw = await start_gateway({"plugins": [cors_spec], "services": [
        {"name": "api", "url": f"http://{up.address}",
         "routes": [{"name": "api", "paths": ["/api"]}]},
        {"name": "closed", "url": f"http://{up.address}",
         "routes": [{"name": "closed", "paths": ["/closed"],
                     "plugins": [{"name": "request-termination"}]}]},
    ]})
    origin = [(b"origin", SITE)]
    try:
        pre = await http(gw.port, "OPTIONS", "/api/items",
                         [*origin, (b"access-control-request-method", b"DELETE")])
        assert pre.status == 204
        assert pre.header("access-control-allow-origin") == SITE.decode()
        assert "DELETE" in (pre.header("access-control-allow-methods") or "")
        assert pre.header("x-request-id")  # the gateway's finishing touches still apply
        assert up.requests == []  # answered at the edge

        refused = await http(gw.port, "OPTIONS", "/api/items",
                             [(b"origin", b"https://evil.example.com"),
                              (b"access-control-request-method", b"GET")])
        assert refused.status == 403
        assert refused.header("access-control-allow-origin") is None

        got = await http(gw.port, "GET", "/api/items", origin)
        assert (got.status, got.body) == (200, b"data")
        assert got.header_all("access-control-allow-origin") == [SITE.decode()]  # not "*"
        assert got.header("access-control-expose-headers") == "X-Total-Count"
        assert got.header("vary") == "Origin"

        # the gateway's own answers carry the headers too, so browsers can read them
        closed = await http(gw.port, "GET", "/closed", origin)
        assert closed.status == 503
        assert closed.header("access-control-allow-origin") == SITE.decode()
    finally:
        await gw.close()
        await up.close()


async def test_end_to_end_preflight_continue_reaches_the_upstream() -> None:
    up = await HttpUpstream().start()
    gw = await start_gateway({"services": [
        {"name": "api", "url": f"http://{up.address}",
         "routes": [{"name": "api", "paths": ["/api"], "plugins": [
             {"name": "cors", "config": {"preflight_continue": True}}]}]}]})
    try:
        resp = await http(gw.port, "OPTIONS", "/api",
                          [(b"origin", SITE), (b"access-control-request-method", b"GET")])
        assert resp.status == 200
        assert [r.method for r in up.requests] == ["OPTIONS"]
        assert resp.header("access-control-allow-origin") == "*"
    finally:
        await gw.close()
        await up.close()

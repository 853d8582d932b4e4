"""oauth2-introspection against a fake RFC 7662 server: caching, scopes, outages,
and JWT access tokens of trusted issuers checked without a call."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway_harness import HttpUpstream, Response, RunningGateway, http, start_gateway
from pydantic import ValidationError
from token_helpers import AuthorizationServer, JwksServer, sign, signing_key

from campusgate.auth.jwks import JwksCache
from campusgate.config.model import PluginSpec
from campusgate.plugins.authentication import Identity
from campusgate.plugins.base import WAIT, PluginEnv
from campusgate.plugins.oauth2_introspection import OAuth2IntrospectionPlugin
from campusgate.plugins.registry import build_plugin, default_resources
from campusgate.proxy.context import LocalResponse, RequestContext

ISSUER = "https://idp.example"
LMS = {"name": "lms-app", "custom_id": "lms"}


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", b"Bearer " + token.encode())]


def refusal(response: Response) -> tuple[str, str]:
    return json.loads(response.body)["error"]["code"], response.header("www-authenticate") or ""


def base_config(url: str = "http://127.0.0.1:1/introspect", **extra: Any) -> dict[str, Any]:
    return {"introspection_url": url, "client_id": "gateway", "client_secret": "s3cret",
            **extra}


# ---------------------------------------------------------------- config


@pytest.mark.parametrize("config, fault", [
    ({}, "introspection_url"),
    (base_config("file:///etc/passwd"), "not an http"),
    (base_config(timeout=0), "timeout"),
    (base_config(cache_ttl=-1), "cache_ttl"),
    (base_config(required_scopes=['bad"scope']), "scope token"),
    (base_config(required_scopes=["two words"]), "scope token"),
    (base_config(consumer_by="id"), "consumer_by"),
    (base_config(jwt_issuers=[{"issuer": ISSUER}]), "jwks_uri"),
    (base_config(jwt_issuers=[{"issuer": ISSUER, "jwks_uri": "https://idp.example/k"}] * 2),
     "names an issuer twice"),
    (base_config(client_secret=""), "client_secret"),
])
def test_bad_config_fails_when_the_config_loads(config: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="oauth2-introspection", config=config)


# ---------------------------------------------------------------- through the gateway


@pytest.fixture
async def upstream() -> AsyncIterator[HttpUpstream]:
    up = await HttpUpstream().start()
    yield up
    await up.close()


@pytest.fixture
async def auth_server() -> AsyncIterator[AuthorizationServer]:
    server = await AuthorizationServer().start()
    server.answers["good"] = {"active": True, "client_id": "lms-app", "sub": "teacher-1",
                              "scope": "roster.read grades.read", "exp": time.time() + 3600}
    yield server
    await server.close()


class Gateways:
    """Gateways started by a test, closed (with the shared HTTP client) at its end."""

    def __init__(self, up: HttpUpstream) -> None:
        self.up = up
        self.running: list[RunningGateway] = []

    async def start(self, config: dict[str, Any],
                    resources: Any = None) -> RunningGateway:
        gw = await start_gateway({
            "services": [{"name": "api", "url": f"http://{self.up.address}",
                          "routes": [{"name": "api-r", "paths": ["/api"]}],
                          "plugins": [{"name": "oauth2-introspection", "config": config}]}],
            "consumers": [LMS],
        }, resources=resources)
        self.running.append(gw)
        return gw

    async def close(self) -> None:
        for gw in self.running:
            await gw.close()
            client = gw.resources.caches.get("http-client:introspection")
            if client is not None:
                await client.aclose()


@pytest.fixture
async def gateways(upstream: HttpUpstream) -> AsyncIterator[Gateways]:
    made = Gateways(upstream)
    yield made
    await made.close()


async def test_an_active_token_is_introspected_once_then_cached(
        gateways: Gateways, upstream: HttpUpstream, auth_server: AuthorizationServer) -> None:
    gw = await gateways.start(base_config(auth_server.url))
    for _ in range(3):
        response = await http(gw.port, "GET", "/api", headers=bearer("good"))
        assert response.status == 200
    assert len(auth_server.calls) == 1  # the second and third came from the cache
    assert auth_server.calls[0] == {"token": "good", "token_type_hint": "access_token"}
    seen = upstream.requests[-1]
    assert seen.header("x-consumer-name") == "lms-app"
    assert seen.header("x-credential-identifier") == "lms-app"
    assert seen.header("authorization") is None


async def test_an_inactive_token_is_a_401_and_is_remembered_briefly(
        gateways: Gateways, upstream: HttpUpstream, auth_server: AuthorizationServer) -> None:
    gw = await gateways.start(base_config(auth_server.url))
    for _ in range(2):
        response = await http(gw.port, "GET", "/api", headers=bearer("revoked"))
        assert response.status == 401
        code, challenge = refusal(response)
        assert code == "invalid_token"
        assert challenge == ('Bearer realm="campusgate", error="invalid_token", '
                             'error_description="the token is not active"')
    assert len(auth_server.calls) == 1  # negative cache
    assert upstream.requests == []


async def test_no_negative_cache_asks_every_time(
        gateways: Gateways, auth_server: AuthorizationServer) -> None:
    gw = await gateways.start(base_config(auth_server.url, negative_cache_ttl=0))
    for _ in range(2):
        assert (await http(gw.port, "GET", "/api", headers=bearer("revoked"))).status == 401
    assert len(auth_server.calls) == 2


async def test_a_missing_scope_is_a_403_insufficient_scope(
        gateways: Gateways, auth_server: AuthorizationServer) -> None:
    gw = await gateways.start(base_config(auth_server.url,
                                          required_scopes=["roster.read", "roster.write"]))
    response = await http(gw.port, "GET", "/api", headers=bearer("good"))
    assert response.status == 403
    code, challenge = refusal(response)
    assert code == "insufficient_scope"
    assert challenge.startswith('Bearer realm="campusgate", error="insufficient_scope", ')
    assert challenge.endswith(', scope="roster.read roster.write"')


async def test_scopes_present_pass(gateways: Gateways, auth_server: AuthorizationServer) -> None:
    gw = await gateways.start(base_config(auth_server.url, required_scopes=["grades.read"]))
    assert (await http(gw.port, "GET", "/api", headers=bearer("good"))).status == 200


@pytest.mark.parametrize("outage", ["down", "500", "timeout", "nonsense"])
async def test_an_unusable_endpoint_is_a_503_not_a_401(
        gateways: Gateways, auth_server: AuthorizationServer, outage: str) -> None:
    url = auth_server.url
    if outage == "down":
        url = "http://127.0.0.1:9/introspect"
    elif outage == "500":
        auth_server.status = 500
    elif outage == "timeout":
        auth_server.delay = 2.0
    else:
        auth_server.answers["good"] = {"ok": "yes"}
    gw = await gateways.start(base_config(url, timeout=0.2))
    response = await http(gw.port, "GET", "/api", headers=bearer("good"))
    assert response.status == 503
    body = json.loads(response.body)["error"]
    assert body["code"] == "introspection_unavailable"
    assert body["request_id"] == response.header("x-request-id")


async def test_an_unknown_client_is_refused_when_a_consumer_is_required(
        gateways: Gateways, upstream: HttpUpstream, auth_server: AuthorizationServer) -> None:
    auth_server.answers["stranger"] = {"active": True, "client_id": "nobody"}
    gw = await gateways.start(base_config(auth_server.url, consumer_optional=False))
    response = await http(gw.port, "GET", "/api", headers=bearer("stranger"))
    assert response.status == 401
    assert "names no consumer" in refusal(response)[1]
    gw2 = await gateways.start(base_config(auth_server.url))  # optional by default
    assert (await http(gw2.port, "GET", "/api", headers=bearer("stranger"))).status == 200
    assert upstream.requests[-1].header("x-consumer-name") is None


async def test_consumer_by_sub_and_custom_id(
        gateways: Gateways, upstream: HttpUpstream, auth_server: AuthorizationServer) -> None:
    auth_server.answers["user"] = {"active": True, "sub": "lms"}
    gw = await gateways.start(base_config(auth_server.url, consumer_claim="sub",
                                          consumer_by="custom_id"))
    assert (await http(gw.port, "GET", "/api", headers=bearer("user"))).status == 200
    assert upstream.requests[-1].header("x-consumer-name") == "lms-app"


async def test_other_schemes_are_not_bearer_tokens(gateways: Gateways,
                                                   auth_server: AuthorizationServer) -> None:
    gw = await gateways.start(base_config(auth_server.url))
    response = await http(gw.port, "GET", "/api", headers=[(b"authorization", b"Basic eDp5")])
    assert refusal(response)[0] == "unauthorized"
    assert auth_server.calls == []


async def test_concurrent_requests_with_one_new_token_share_one_call(
        gateways: Gateways, auth_server: AuthorizationServer) -> None:
    auth_server.delay = 0.2
    gw = await gateways.start(base_config(auth_server.url))
    responses = await asyncio.gather(*(http(gw.port, "GET", "/api", headers=bearer("good"))
                                       for _ in range(5)))
    assert [r.status for r in responses] == [200] * 5
    assert len(auth_server.calls) == 1


# ---------------------------------------------------------------- JWT access tokens


@pytest.fixture
async def jwks() -> AsyncIterator[JwksServer]:
    server = await JwksServer(signing_key("ES256")).start()
    yield server
    await server.close()


def access_token(**extra: Any) -> str:
    claims = {"iss": ISSUER, "sub": "teacher-1", "client_id": "lms-app", "aud": "roster",
              "scope": "roster.read", "exp": time.time() + 300, "iat": time.time(), **extra}
    typ = claims.pop("typ", "at+jwt")
    return sign(claims, "ES256", signing_key("ES256"), kid="ec-ES256-0", typ=typ)


def issuer_config(auth_server: AuthorizationServer, jwks: JwksServer,
                  **extra: Any) -> dict[str, Any]:
    return base_config(auth_server.url, jwt_issuers=[
        {"issuer": ISSUER, "jwks_uri": jwks.url, "audiences": ["roster"]}], **extra)


async def test_a_trusted_issuers_jwt_is_checked_without_a_call(
        gateways: Gateways, upstream: HttpUpstream, auth_server: AuthorizationServer,
        jwks: JwksServer) -> None:
    gw = await gateways.start(issuer_config(auth_server, jwks, required_scopes=["roster.read"]))
    token = access_token()
    for _ in range(2):
        response = await http(gw.port, "GET", "/api", headers=bearer(token))
        assert response.status == 200
    assert auth_server.calls == []
    assert jwks.fetches == 1
    assert upstream.requests[-1].header("x-consumer-name") == "lms-app"


@pytest.mark.parametrize("extra, reason", [
    ({"exp": time.time() - 600}, "expired"),
    ({"aud": "elsewhere"}, "audience"),
    ({"typ": "JWT"}, "at+jwt"),
    ({"scope": "grades.read"}, "required scope"),
])
async def test_a_bad_jwt_from_a_trusted_issuer_is_refused_locally(
        gateways: Gateways, auth_server: AuthorizationServer, jwks: JwksServer,
        extra: dict[str, Any], reason: str) -> None:
    gw = await gateways.start(issuer_config(auth_server, jwks, required_scopes=["roster.read"]))
    response = await http(gw.port, "GET", "/api", headers=bearer(access_token(**extra)))
    assert response.status in (401, 403)
    assert reason in refusal(response)[1]
    assert auth_server.calls == []


async def test_a_jwt_from_another_issuer_is_introspected(
        gateways: Gateways, auth_server: AuthorizationServer, jwks: JwksServer) -> None:
    gw = await gateways.start(issuer_config(auth_server, jwks))
    foreign = access_token(iss="https://elsewhere.example")
    assert (await http(gw.port, "GET", "/api", headers=bearer(foreign))).status == 401
    assert len(auth_server.calls) == 1
    assert jwks.fetches == 0


async def test_issuer_keys_rotation_invalidates_cached_tokens(
        gateways: Gateways, auth_server: AuthorizationServer, jwks: JwksServer) -> None:
    resources = default_resources()
    resources.caches[f"jwks:{jwks.url}"] = JwksCache(jwks.url, refetch_interval=0)
    gw = await gateways.start(issuer_config(auth_server, jwks), resources)
    token = access_token()
    assert (await http(gw.port, "GET", "/api", headers=bearer(token))).status == 200
    new_key = signing_key("ES256", 1)
    jwks.set_keys(new_key)  # the old key is withdrawn, a new one published
    claims = {"iss": ISSUER, "aud": "roster", "exp": time.time() + 300}
    new_token = sign(claims, "ES256", new_key, kid="ec-ES256-1", typ="at+jwt")
    assert (await http(gw.port, "GET", "/api", headers=bearer(new_token))).status == 200
    assert jwks.fetches == 2
    response = await http(gw.port, "GET", "/api", headers=bearer(token))
    assert response.status == 401
    assert "no key" in refusal(response)[1]


# ---------------------------------------------------------------- without the gateway


def plugin(config: dict[str, Any]) -> OAuth2IntrospectionPlugin:
    made = build_plugin("oauth2-introspection", config, PluginEnv(default_resources()))
    assert isinstance(made, OAuth2IntrospectionPlugin)
    return made


def request(token: str) -> RequestContext:
    return RequestContext("GET", "/api", "", bearer(token), "127.0.0.1", "http", "gw", "rid")


async def test_a_cached_answer_never_outlives_the_token(
        auth_server: AuthorizationServer) -> None:
    now = time.time()
    auth_server.answers["short"] = {"active": True, "exp": now + 5}
    p = plugin(base_config(auth_server.url, cache_ttl=600))
    p.clock = lambda: now
    try:
        assert p.authenticate_now(request("short")) is WAIT
        assert isinstance(await p.authenticate(request("short")), Identity)
        assert isinstance(p.authenticate_now(request("short")), Identity)  # cached
        p.clock = lambda: now + 6  # past exp: the cached answer is gone
        assert p.authenticate_now(request("short")) is WAIT
    finally:
        await p.env.resources.caches["http-client:introspection"].aclose()


async def test_an_empty_bearer_token_is_refused_without_a_call() -> None:
    p = plugin(base_config())
    answer = p.authenticate_now(RequestContext("GET", "/", "", [(b"authorization", b"Bearer ")],
                                               "127.0.0.1", "http", "gw", "rid"))
    assert isinstance(answer, LocalResponse) and answer.status == 401

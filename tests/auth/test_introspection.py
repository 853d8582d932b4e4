"""RFC 7662 client: the request it sends, how it reads answers, how long it keeps them."""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import httpx
import pytest
from token_helpers import AuthorizationServer

from campusgate.auth.introspection import (
    IntrospectionUnavailable,
    Introspector,
    TokenInfo,
    cache_expiry,
    introspection_request,
    parse_introspection,
)


def test_the_request_is_a_form_post_with_client_secret_basic() -> None:
    headers, body = introspection_request("tok en", "gate:way", "s3cr&t", "access_token")
    assert dict(parse_qsl(body.decode())) == {"token": "tok en",
                                              "token_type_hint": "access_token"}
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    scheme, _, encoded = headers["authorization"].partition(" ")
    assert scheme == "Basic"
    # RFC 6749 section 2.3.1: id and secret are form-encoded before they are joined
    assert base64.b64decode(encoded) == b"gate%3Away:s3cr%26t"


def test_the_hint_is_optional() -> None:
    _, body = introspection_request("t", "id", "secret")
    assert dict(parse_qsl(body.decode())) == {"token": "t"}


@pytest.mark.parametrize("status, body, active", [
    (200, b'{"active": true, "scope": "a b", "client_id": "lms"}', True),
    (200, b'{"active": false}', False),
    (200, b'{"active": false, "sub": "leaks"}', False),
])
def test_answers(status: int, body: bytes, active: bool) -> None:
    info = parse_introspection(status, body)
    assert info.active is active
    if active:
        assert info.scopes == {"a", "b"} and info.claims["client_id"] == "lms"
    else:
        assert dict(info.claims) == {}


@pytest.mark.parametrize("status, body, fault", [
    (500, b'{"active": true}', "answered 500"),
    (401, b'{"error": "invalid_client"}', "answered 401"),
    (200, b"<html>", "not JSON"),
    (200, b"[true]", "boolean 'active'"),
    (200, b'{"active": "true"}', "boolean 'active'"),
    (200, b"{}", "boolean 'active'"),
])
def test_unusable_answers(status: int, body: bytes, fault: str) -> None:
    with pytest.raises(IntrospectionUnavailable, match=fault):
        parse_introspection(status, body)


NOW = 1_000_000.0


@pytest.mark.parametrize("info, expected", [
    (TokenInfo(True, {}), NOW + 60),
    (TokenInfo(True, {"exp": NOW + 20}), NOW + 20),  # never past exp
    (TokenInfo(True, {"exp": NOW + 600}), NOW + 60),
    (TokenInfo(True, {"exp": NOW - 5}), None),
    (TokenInfo(True, {"exp": "soon"}), NOW + 60),
    (TokenInfo(False), NOW + 10),
])
def test_cache_expiry(info: TokenInfo, expected: float | None) -> None:
    assert cache_expiry(info, NOW, 60, 10) == expected


def test_zero_ttls_mean_no_caching() -> None:
    assert cache_expiry(TokenInfo(True, {}), NOW, 0, 0) is None
    assert cache_expiry(TokenInfo(False), NOW, 60, 0) is None


@pytest.fixture
async def server() -> AsyncIterator[AuthorizationServer]:
    srv = await AuthorizationServer().start()
    yield srv
    await srv.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


async def test_introspector_calls_the_endpoint(server: AuthorizationServer,
                                               client: httpx.AsyncClient) -> None:
    server.answers["good"] = {"active": True, "client_id": "lms"}
    introspector = Introspector(server.url, "gw", "secret", "access_token", 2.0, client)
    assert (await introspector.introspect("good")).claims["client_id"] == "lms"
    assert not (await introspector.introspect("other")).active
    assert server.calls[0] == {"token": "good", "token_type_hint": "access_token"}
    assert server.authorizations[0] == "Basic " + base64.b64encode(b"gw:secret").decode()


async def test_introspector_timeout_and_refusal_are_unavailable(
        server: AuthorizationServer, client: httpx.AsyncClient) -> None:
    server.delay = 1.0
    slow = Introspector(server.url, "gw", "secret", None, 0.1, client)
    with pytest.raises(IntrospectionUnavailable, match="timed out"):
        await slow.introspect("t")
    down = Introspector("http://127.0.0.1:9/introspect", "gw", "secret", None, 2.0, client)
    with pytest.raises(IntrospectionUnavailable, match="could not be reached"):
        await down.introspect("t")


async def test_a_tls_alert_after_the_handshake_is_unavailable() -> None:
    """A TLS 1.3 alert read after the handshake (the server wants a client
    certificate) reaches httpx's caller as a raw ``ssl.SSLError``: unavailable."""
    def refuse(request: httpx.Request) -> httpx.Response:
        raise ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]")
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as refusing:
        introspector = Introspector("https://as.example/introspect", "gw", "secret", None,
                                    2.0, refusing)
        with pytest.raises(IntrospectionUnavailable, match=r"could not be reached \(SSLError\)"):
            await introspector.introspect("t")

"""The code exchange request of campusgate's own clients (auth/token_request.py):
RFC 6749 4.1.3 with PKCE's verifier, the client authenticated one way only."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
from authlib.oauth2.rfc6749.util import (  # type: ignore[import-untyped]
    extract_basic_authorization,
)

from campusgate.auth.token_request import (
    CLIENT_SECRET_BASIC,
    CLIENT_SECRET_POST,
    code_exchange_request,
)

STANDARD = {"grant_type": ["authorization_code"], "code": ["the-code"],
            "redirect_uri": ["https://app.example.edu/cb"], "code_verifier": ["v" * 43]}


def build(client: httpx.AsyncClient, method: str, timeout: float | None = None
          ) -> httpx.Request:
    return code_exchange_request(
        client, "https://idp.example.edu/token", client_id="app:1",
        client_secret="se:cret %", auth_method=method, code="the-code",
        redirect_uri="https://app.example.edu/cb", verifier="v" * 43, timeout=timeout)


async def test_client_secret_basic_sends_the_secret_in_the_header_only() -> None:
    async with httpx.AsyncClient() as client:
        request = build(client, CLIENT_SECRET_BASIC)
    assert (request.method, str(request.url)) == ("POST", "https://idp.example.edu/token")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["accept"] == "application/json"
    assert extract_basic_authorization(request.headers) == ("app:1", "se:cret %")
    assert parse_qs(request.content.decode()) == STANDARD


async def test_client_secret_post_sends_it_in_the_form_only() -> None:
    async with httpx.AsyncClient() as client:
        request = build(client, CLIENT_SECRET_POST)
    assert "authorization" not in request.headers
    assert parse_qs(request.content.decode()) == {
        **STANDARD, "client_id": ["app:1"], "client_secret": ["se:cret %"]}


async def test_the_timeout_is_the_client_s_unless_given() -> None:
    async with httpx.AsyncClient(timeout=7.0) as client:
        default, given = build(client, CLIENT_SECRET_BASIC), build(client, CLIENT_SECRET_BASIC,
                                                                   timeout=2.5)
    assert default.extensions["timeout"]["read"] == 7.0
    assert given.extensions["timeout"]["read"] == 2.5

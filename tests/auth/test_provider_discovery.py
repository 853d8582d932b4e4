"""An OpenID provider's discovery document (auth/discovery.py): what is required, the
issuer check, how to authenticate, and the fetch against a real server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gateway_harness import HttpUpstream, UpstreamRequest, ok_response

from campusgate.auth.discovery import (
    DiscoveryError,
    fetch_document,
    provider_urls,
    token_auth_method,
)
from campusgate.auth.pkce import challenge, pkce_pair
from campusgate.auth.retry import RetryPolicy, Unavailable

ISSUER = "https://idp.example.edu"
DOC = {"issuer": ISSUER, "authorization_endpoint": ISSUER + "/authorize",
       "token_endpoint": ISSUER + "/token", "jwks_uri": ISSUER + "/jwks",
       "userinfo_endpoint": ISSUER + "/userinfo", "end_session_endpoint": "javascript:x"}


def test_the_endpoints_of_a_good_document() -> None:
    assert provider_urls(DOC, ISSUER) == {
        "authorization_endpoint": ISSUER + "/authorize", "token_endpoint": ISSUER + "/token",
        "jwks_uri": ISSUER + "/jwks", "userinfo_endpoint": ISSUER + "/userinfo"}


def test_a_preset_may_take_only_the_key_set_and_skip_the_issuer() -> None:
    assert provider_urls({"jwks_uri": ISSUER + "/jwks"}, None, required=("jwks_uri",)) == {
        "jwks_uri": ISSUER + "/jwks"}


@pytest.mark.parametrize(("document", "problem"), [
    ({**DOC, "issuer": "https://evil.example"}, "names issuer"),
    ({**DOC, "issuer": ISSUER + "/"}, "names issuer"),
    ({k: v for k, v in DOC.items() if k != "jwks_uri"}, "jwks_uri"),
    ({**DOC, "token_endpoint": "ftp://x"}, "token_endpoint"),
    ({**DOC, "authorization_endpoint": 7}, "authorization_endpoint"),
    ([], "not a JSON object"),
])
def test_a_document_that_cannot_be_used(document: Any, problem: str) -> None:
    with pytest.raises(DiscoveryError, match=problem):
        provider_urls(document, ISSUER)


@pytest.mark.parametrize(("methods", "expected"), [
    (None, "client_secret_basic"),
    (["client_secret_basic", "client_secret_post"], "client_secret_basic"),
    (["client_secret_post"], "client_secret_post"),
    (["private_key_jwt"], "client_secret_basic"),
])
def test_how_to_authenticate_at_the_token_endpoint(methods: Any, expected: str) -> None:
    assert token_auth_method({"token_endpoint_auth_methods_supported": methods}) == expected


def test_pkce_pairs_are_fresh_and_s256() -> None:
    verifier, code_challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128 and code_challenge == challenge(verifier)
    assert pkce_pair()[0] != verifier
    # RFC 7636 appendix B
    assert challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == \
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


#: path -> (status, body) of the discovery documents served.
DOCUMENTS = {"/good": (200, json.dumps(DOC).encode()), "/list": (200, b"[]"),
             "/html": (200, b"<html>"), "/gone": (404, b"{}"), "/down": (503, b""),
             "/huge": (200, b" " * (300 * 1024) + b"{}")}


@pytest.fixture
async def documents() -> AsyncIterator[str]:
    async def answer(request: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        status, body = DOCUMENTS[request.target]
        writer.write(ok_response(body, status))

    upstream = await HttpUpstream(answer).start()
    yield f"http://{upstream.address}"
    await upstream.close()


async def fetch(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        return await fetch_document(client, url, time_limit=2.0,
                                    policy=RetryPolicy(attempts=2, base=0.01, budget=1.0))


async def test_a_document_is_fetched(documents: str) -> None:
    assert (await fetch(documents + "/good"))["issuer"] == ISSUER


@pytest.mark.parametrize(("path", "problem"), [
    ("/list", "not a JSON object"), ("/html", "not JSON"), ("/gone", "answered 404"),
    ("/huge", "too large"),
])
async def test_a_fetched_document_that_cannot_be_used(documents: str, path: str,
                                                      problem: str) -> None:
    with pytest.raises(DiscoveryError, match=problem):
        await fetch(documents + path)


async def test_a_provider_that_is_down_is_unavailable(documents: str) -> None:
    with pytest.raises(Unavailable, match="answered 503"):
        await fetch(documents + "/down")

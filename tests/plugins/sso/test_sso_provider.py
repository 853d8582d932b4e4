"""The sso plugin as a relying party: metadata, the authorization request and the ID
token check (plugins/_sso_provider.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from campusgate.auth.jwks import StaticKeys
from campusgate.plugins._sso_provider import (
    ProviderMetadata,
    ProviderUnavailable,
    SignInFailed,
    authorization_url,
    exchange_code,
    pkce_pair,
    verify_id_token,
)

ISSUER = "https://idp.example.edu"
NOW = 1_800_000_000
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
KEYS = StaticKeys.of(RSAKey.import_key(KEY.as_dict(private=False)))


def id_token(key: Any = KEY, alg: str = "RS256", **changes: Any) -> str:
    claims = {"iss": ISSUER, "aud": "app", "sub": "u1", "nonce": "n-1", "iat": NOW,
              "exp": NOW + 300, **changes}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": "k1"}, claims, key)


async def test_a_valid_id_token_gives_its_claims() -> None:
    claims = await verify_id_token(id_token(role="teacher"), KEYS, ISSUER, "app", "n-1", NOW)
    assert (claims["sub"], claims["role"]) == ("u1", "teacher")


@pytest.mark.parametrize("token, reason", [
    (id_token(nonce="other"), "nonce"),
    (id_token(key=OctKey.import_key(b"k" * 32), alg="HS256"), "algorithm"),
    ("not-a-jwt", "well-formed"),
])
async def test_a_refused_id_token_is_a_failed_sign_in_that_says_why(token: str,
                                                                    reason: str) -> None:
    """The checks are auth/id_token.py's (tests/auth/test_id_token.py); here: the
    plugin tells the person, as SignInFailed."""
    with pytest.raises(SignInFailed, match=f"ID token is not valid.*{reason}"):
        await verify_id_token(token, KEYS, ISSUER, "app", "n-1", NOW)


DOC = {"issuer": ISSUER, "authorization_endpoint": ISSUER + "/authorize",
       "token_endpoint": ISSUER + "/token", "jwks_uri": ISSUER + "/jwks",
       "end_session_endpoint": ISSUER + "/logout"}


def test_metadata_from_discovery() -> None:
    meta = ProviderMetadata.from_document(DOC, ISSUER)
    assert (meta.token_endpoint, meta.end_session_endpoint, meta.token_auth) == (
        ISSUER + "/token", ISSUER + "/logout", "client_secret_basic")
    post = ProviderMetadata.from_document(
        {**DOC, "token_endpoint_auth_methods_supported": ["client_secret_post"]}, ISSUER)
    assert post.token_auth == "client_secret_post"


@pytest.mark.parametrize("doc, problem", [
    ({**DOC, "issuer": "https://evil.example"}, "names issuer"),
    ({k: v for k, v in DOC.items() if k != "jwks_uri"}, "jwks_uri"),
    ({**DOC, "token_endpoint": "javascript:x"}, "token_endpoint"),
    ([], "not a JSON object"),
])
def test_unusable_discovery_documents(doc: Any, problem: str) -> None:
    with pytest.raises(ProviderUnavailable, match=problem):
        ProviderMetadata.from_document(doc, ISSUER)


def test_the_authorization_request_is_a_code_flow_with_pkce() -> None:
    verifier, challenge = pkce_pair()
    assert verifier != challenge and len(verifier) >= 43
    url = authorization_url(ProviderMetadata.from_document(DOC, ISSUER), "app",
                            "https://app.example.edu/_sso/callback", ["openid", "roster"],
                            "st", "no", challenge)
    query = parse_qs(urlsplit(url).query)
    assert query == {"response_type": ["code"], "client_id": ["app"],
                     "redirect_uri": ["https://app.example.edu/_sso/callback"],
                     "scope": ["openid roster"], "state": ["st"], "nonce": ["no"],
                     "code_challenge": [challenge], "code_challenge_method": ["S256"]}


class _Provider(BaseHTTPRequestHandler):
    """A token endpoint that answers by path: 429, a refused code, slowly, or HTML;
    ``/flaky-N``: 503 to every odd request to that path, a token response to the even."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path == "/slow":
            time.sleep(1.0)
        calls: dict[str, int] = self.server.calls  # type: ignore[attr-defined]
        count = calls[self.path] = calls.get(self.path, 0) + 1
        flaky = (503, b"{}") if count % 2 else (200, b'{"id_token": "t"}')
        status, body = {"/busy": (429, b"{}"), "/refused": (400, b'{"error":"invalid_grant"}'),
                        "/html": (200, b"<html>")}.get(
            self.path, flaky if self.path.startswith("/flaky") else (200, b"{}"))
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # the slow answer finds its client gone: expected here


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    server = _QuietServer(("127.0.0.1", 0), _Provider)
    server.calls = {}  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path, error, message", [
    ("/busy", ProviderUnavailable, "answered 429 .after 3 attempts"),
    ("/slow", ProviderUnavailable, "timed out .after 3 attempts"),
    ("/html", ProviderUnavailable, "without JSON"),
    ("/refused", SignInFailed, "invalid_grant"),
    ("/ok-but-no-id-token", SignInFailed, "no ID token"),
])
async def test_the_code_exchange_tells_a_busy_provider_from_a_refused_sign_in(
        provider: str, path: str, error: type[Exception], message: str) -> None:
    meta = ProviderMetadata(ISSUER, ISSUER + "/authorize", provider + path, ISSUER + "/jwks")
    async with httpx.AsyncClient() as client:
        with pytest.raises(error, match=message):
            await exchange_code(client, meta, "app", "secret", "code", "https://app/cb",
                                "verifier", 0.3)


async def test_the_code_exchange_tries_again_after_a_5xx(provider: str) -> None:
    meta = ProviderMetadata(ISSUER, ISSUER + "/authorize", provider + "/flaky-1",
                            ISSUER + "/jwks")
    async with httpx.AsyncClient() as client:
        tokens = await exchange_code(client, meta, "app", "secret", "code", "https://app/cb",
                                     "verifier", 1.0)
    assert tokens["id_token"] == "t"

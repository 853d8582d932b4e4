"""Client authentication (RFC 6749 2.3, RFC 7523 2.2 / OIDC Core 9), seen at the
token endpoint and through ``server.authenticate_client``."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest
from identity_harness import ISSUER, SECRETS, identity_config, sealed
from joserfc import jwt
from joserfc.jwk import RSAKey
from oauth_harness import Flow, basic

from campusgate.identity.context import IdentityContext
from campusgate.identity.oauth.errors import OAuth2Error
from campusgate.identity.oauth.server import HttpRequest, authenticate_client
from campusgate.keyring import Keyring

GRANT = {"grant_type": "client_credentials"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_URL = ISSUER + "/oauth2/token"


def use_clients(ctx: IdentityContext, keyring: Keyring, *clients: dict[str, Any]) -> None:
    base = identity_config()
    config = identity_config(clients=[c.model_dump(exclude_none=True) for c in base.clients]
                             + list(clients))
    ctx.update(sealed(config, keyring))


def assert_invalid_client(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith('Basic realm="campusgate"')


# ------------------------------------------------------------ secrets
async def test_basic_with_the_right_secret(flow: Flow) -> None:
    assert (await flow.token(GRANT, client_id="reports")).status_code == 200


async def test_basic_with_a_wrong_secret_is_a_401_challenge(flow: Flow) -> None:
    assert_invalid_client(await flow.token(GRANT, client_id="reports",
                                           secret="reports-secret-WRONG-0123456"))


async def test_unknown_client_is_invalid_client(flow: Flow) -> None:
    assert_invalid_client(await flow.token(GRANT, client_id="nobody",
                                           secret="whatever-0123456789"))


async def test_basic_credentials_are_form_urlencoded(
        flow: Flow, identity_ctx: IdentityContext, keyring: Keyring) -> None:
    secret = "p@ss:w%rd+plus/=0123456789"
    use_clients(identity_ctx, keyring, {
        "client_id": "svc:batch", "client_secret": secret,
        "grant_types": ["client_credentials"], "scopes": ["roster.read"]})
    raw = f"{quote('svc:batch', safe='')}:{quote(secret, safe='')}".encode()
    headers = {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    response = await flow.http.post("/oauth2/token", data=GRANT, headers=headers)
    assert response.status_code == 200, response.text


async def test_client_secret_post_when_registered(
        flow: Flow, identity_ctx: IdentityContext, keyring: Keyring) -> None:
    use_clients(identity_ctx, keyring, {
        "client_id": "poster", "client_secret": "poster-secret-0123456789",
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["client_credentials"], "scopes": ["roster.read"]})
    ok = await flow.http.post("/oauth2/token", data={
        **GRANT, "client_id": "poster", "client_secret": "poster-secret-0123456789"})
    assert ok.status_code == 200, ok.text
    # the same client may not switch to Basic, nor a Basic client to POST
    assert_invalid_client(await flow.token(GRANT, client_id="poster",
                                           secret="poster-secret-0123456789"))
    assert_invalid_client(await flow.http.post("/oauth2/token", data={
        **GRANT, "client_id": "reports", "client_secret": SECRETS["reports"]}))


async def test_two_methods_at_once_are_invalid_request(flow: Flow) -> None:
    response = await flow.http.post(
        "/oauth2/token", data={**GRANT, "client_id": "reports",
                               "client_secret": SECRETS["reports"]},
        headers=basic("reports", SECRETS["reports"]))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_confidential_client_must_authenticate(flow: Flow) -> None:
    response = await flow.http.post("/oauth2/token", data={**GRANT, "client_id": "reports"})
    assert_invalid_client(response)
    assert_invalid_client(await flow.http.post("/oauth2/token", data=GRANT))


async def test_client_id_parameter_must_match(flow: Flow) -> None:
    response = await flow.token({**GRANT, "client_id": "lms"}, client_id="reports")
    assert_invalid_client(response)


async def test_a_bad_basic_header_does_not_fall_back_to_none(flow: Flow) -> None:
    """A public client that sends a (wrong) Basic secret is not let in as ``none``."""
    response = await flow.http.post(
        "/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": "cgrt_x",
                               "client_id": "mobile"},
        headers=basic("mobile", "not-a-secret-0123456789"))
    assert_invalid_client(response)


# ------------------------------------------------------------ private_key_jwt
@pytest.fixture
def signer_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "signer-1"})


def assertion(key: RSAKey, **overrides: Any) -> str:
    claims: dict[str, Any] = {"iss": "signer", "sub": "signer", "aud": TOKEN_URL,
                              "jti": base64.urlsafe_b64encode(bytes(12)).decode() + "a",
                              "exp": 1_800_000_000 + 60, "iat": 1_800_000_000}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def jwt_client(key: RSAKey, **extra: Any) -> dict[str, Any]:
    client = {"client_id": "signer", "token_endpoint_auth_method": "private_key_jwt",
              "grant_types": ["client_credentials"], "scopes": ["roster.read"],
              "jwks": {"keys": [key.as_dict(private=False)]}}
    client.update(extra)
    return client


async def post_assertion(flow: Flow, token: str, **extra: str) -> Any:
    return await flow.http.post("/oauth2/token", data={
        **GRANT, "client_assertion_type": ASSERTION_TYPE, "client_assertion": token,
        **extra})


async def test_private_key_jwt(flow: Flow, identity_ctx: IdentityContext, keyring: Keyring,
                               signer_key: RSAKey) -> None:
    use_clients(identity_ctx, keyring, jwt_client(signer_key))
    response = await post_assertion(flow, assertion(signer_key))
    assert response.status_code == 200, response.text
    # the issuer is an acceptable audience too
    response = await post_assertion(flow, assertion(signer_key, jti="second", aud=ISSUER))
    assert response.status_code == 200, response.text


async def test_private_key_jwt_assertion_is_single_use(
        flow: Flow, identity_ctx: IdentityContext, keyring: Keyring,
        signer_key: RSAKey) -> None:
    use_clients(identity_ctx, keyring, jwt_client(signer_key))
    token = assertion(signer_key)
    assert (await post_assertion(flow, token)).status_code == 200
    assert_invalid_client(await post_assertion(flow, token))


@pytest.mark.parametrize("claims", [
    {"aud": "https://elsewhere.example/token"},
    {"exp": None},
    {"exp": 1_800_000_000 - 120},
    {"exp": 1_800_000_000 + 7200},
    {"jti": None},
    {"iss": "someone-else"},
    {"nbf": 1_800_000_000 + 600},
])
async def test_private_key_jwt_claims_are_checked(
        flow: Flow, identity_ctx: IdentityContext, keyring: Keyring, signer_key: RSAKey,
        claims: dict[str, Any]) -> None:
    use_clients(identity_ctx, keyring, jwt_client(signer_key))
    assert_invalid_client(await post_assertion(flow, assertion(signer_key, **claims)))


async def test_private_key_jwt_signed_by_another_key(
        flow: Flow, identity_ctx: IdentityContext, keyring: Keyring,
        signer_key: RSAKey) -> None:
    use_clients(identity_ctx, keyring, jwt_client(signer_key))
    impostor = RSAKey.generate_key(2048, parameters={"kid": "signer-1"})
    assert_invalid_client(await post_assertion(flow, assertion(impostor)))


async def test_wrong_assertion_type(flow: Flow, identity_ctx: IdentityContext,
                                    keyring: Keyring, signer_key: RSAKey) -> None:
    use_clients(identity_ctx, keyring, jwt_client(signer_key))
    response = await flow.http.post("/oauth2/token", data={
        **GRANT, "client_assertion_type": "urn:example:other",
        "client_assertion": assertion(signer_key)})
    assert_invalid_client(response)


async def test_secret_client_cannot_use_an_assertion(
        flow: Flow, identity_ctx: IdentityContext, keyring: Keyring,
        signer_key: RSAKey) -> None:
    use_clients(identity_ctx, keyring, jwt_client(signer_key))
    token = assertion(signer_key, iss="reports", sub="reports")
    assert_invalid_client(await post_assertion(flow, token))


@pytest.fixture
def jwks_server(signer_key: RSAKey) -> Iterator[str]:
    """A JWKS document served on 127.0.0.1."""
    document = json.dumps({"keys": [signer_key.as_dict(private=False)]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()


async def test_private_key_jwt_with_jwks_uri(flow: Flow, identity_ctx: IdentityContext,
                                             keyring: Keyring, signer_key: RSAKey,
                                             jwks_server: str) -> None:
    use_clients(identity_ctx, keyring, jwt_client(signer_key, jwks=None,
                                                  jwks_uri=jwks_server))
    response = await post_assertion(flow, assertion(signer_key))
    assert response.status_code == 200, response.text


async def test_unreachable_jwks_uri(flow: Flow, identity_ctx: IdentityContext,
                                    keyring: Keyring, signer_key: RSAKey) -> None:
    use_clients(identity_ctx, keyring, jwt_client(
        signer_key, jwks=None, jwks_uri="http://127.0.0.1:9/jwks.json"))
    assert_invalid_client(await post_assertion(flow, assertion(signer_key)))


# ------------------------------------------------------------ other endpoints
def form_request(*params: tuple[str, str], headers: dict[str, str] | None = None
                 ) -> HttpRequest:
    return HttpRequest("POST", ISSUER + "/oauth2/introspect", headers or {}, params)


async def test_public_client_cannot_authenticate_for_introspection(
        identity_ctx: IdentityContext) -> None:
    with pytest.raises(OAuth2Error) as raised:
        await authenticate_client(identity_ctx, form_request(("client_id", "mobile")),
                                  "introspection")
    assert raised.value.error == "invalid_client"
    assert raised.value.status_code == 401
    client = await authenticate_client(identity_ctx, form_request(("client_id", "mobile")),
                                       "revocation")
    assert client.client_id == "mobile"


async def test_authenticate_client_for_other_endpoints(identity_ctx: IdentityContext) -> None:
    request = form_request(headers=basic("reports", SECRETS["reports"]))
    client = await authenticate_client(identity_ctx, request, "introspection")
    assert client.client_id == "reports" and client.can_introspect

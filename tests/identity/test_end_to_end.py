"""The identity provider as its users meet it: ``campusgate serve`` in a process, a
browser (an HTTP client following redirects and posting the forms it is shown), an
app exchanging codes and refreshing tokens, an API behind the gateway checking the
tokens, and every token verified with an independent JOSE library (PyJWT) against
the published JWKS.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from identity_harness import (
    CALLBACK,
    IDENTITY,
    LMS_SECRET,
    REPORTS_SECRET,
    ServedGateway,
    authorize_url,
    pkce,
    serve_gateway,
    sign_in,
)

# An API behind the gateway that accepts campusgate's access tokens, checked at the
# proxy with the jwt plugin against the published JWKS.
API = """\
  - name: api
    url: builtin://echo
    routes:
      - {name: api, paths: [/api]}
    plugins:
      - name: jwt
        config:
          jwks_uri: "{issuer}/oauth2/jwks"
          issuer: "{issuer}"
          audiences: [https://api.example.edu]
          algorithms: [RS256]
          consumer_optional: true
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedGateway]:
    workdir: Path = tmp_path_factory.mktemp("idp")
    served = serve_gateway(workdir, IDENTITY, API)
    served.create_user("alice", "correct horse battery staple", email="alice@example.edu",
                       email_verified=True, name="Alice Liddell", given_name="Alice",
                       family_name="Liddell")
    yield served
    assert served.stop() == 0


def jwks_client(gw: ServedGateway) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(f"{gw.issuer}/oauth2/jwks", cache_keys=False)


def verify(gw: ServedGateway, token: str, *, audience: str, typ: str | None = None
           ) -> dict[str, Any]:
    """Check ``token`` with PyJWT against the JWKS the provider publishes."""
    key = jwks_client(gw).get_signing_key_from_jwt(token)
    header = jwt.get_unverified_header(token)
    if typ is not None:
        assert header["typ"].lower() == typ
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=[header["alg"]],
                                        audience=audience, issuer=gw.issuer)
    return claims


def token_request(gw: ServedGateway, **form: str) -> httpx.Response:
    return httpx.post(f"{gw.issuer}/oauth2/token", data=form, auth=("lms", LMS_SECRET))


def test_discovery_advertises_urls_derived_from_the_issuer(gateway: ServedGateway) -> None:
    meta = httpx.get(f"{gateway.issuer}/.well-known/openid-configuration").json()
    assert meta["issuer"] == gateway.issuer
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                 "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"):
        assert meta[name].startswith(gateway.issuer + "/"), name
    rfc8414 = httpx.get(f"{gateway.issuer}/.well-known/oauth-authorization-server").json()
    assert rfc8414["issuer"] == gateway.issuer
    assert rfc8414["token_endpoint"] == meta["token_endpoint"]


def test_full_code_flow_with_pkce_then_userinfo_refresh_revocation_introspection(
        gateway: ServedGateway) -> None:
    verifier, challenge = pkce()
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    with httpx.Client(base_url=gateway.issuer) as browser:
        landing = sign_in(browser, authorize_url(gateway.issuer, challenge, state, nonce),
                          "alice", "correct horse battery staple")
    assert f"{landing.scheme}://{landing.host}{landing.path}" == CALLBACK
    params = parse_qs(urlsplit(str(landing)).query)
    assert params["state"] == [state]
    assert params["iss"] == [gateway.issuer]  # RFC 9207
    code = params["code"][0]

    answer = token_request(gateway, grant_type="authorization_code", code=code,
                           redirect_uri=CALLBACK, code_verifier=verifier)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    tokens = answer.json()
    assert tokens["token_type"].lower() == "bearer"

    # Every token checks out with an independent library against the published keys.
    id_claims = verify(gateway, tokens["id_token"], audience="lms")
    assert id_claims["nonce"] == nonce
    assert id_claims["email"] == "alice@example.edu"
    at = verify(gateway, tokens["access_token"], audience="https://api.example.edu",
                typ="at+jwt")
    assert at["client_id"] == "lms" and at["sub"] == id_claims["sub"]
    assert set(at["scope"].split()) == {"openid", "profile", "email", "offline_access",
                                        "roster.read"}
    assert at["jti"]

    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    info = httpx.get(f"{gateway.issuer}/oauth2/userinfo", headers=bearer)
    assert info.status_code == 200
    assert info.json()["sub"] == id_claims["sub"]
    assert info.json()["name"] == "Alice Liddell"
    posted = httpx.post(f"{gateway.issuer}/oauth2/userinfo", headers=bearer)
    assert posted.json() == info.json()

    # The gateway lets the token through to the API; no token, no entry.
    assert httpx.get(f"{gateway.issuer}/api/grades", headers=bearer).status_code == 200
    assert httpx.get(f"{gateway.issuer}/api/grades").status_code == 401

    # Refresh: a new refresh token each time.
    refreshed = token_request(gateway, grant_type="refresh_token",
                              refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != tokens["refresh_token"]

    # Introspection by a resource server, then revocation by the client.
    def introspect(token: str) -> dict[str, Any]:
        answer = httpx.post(f"{gateway.issuer}/oauth2/introspect", data={"token": token},
                            auth=("reports", REPORTS_SECRET))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    live = introspect(second["access_token"])
    assert live["active"] is True and live["client_id"] == "lms"
    assert live["username"] == "alice"
    assert introspect(second["refresh_token"])["active"] is True
    revoked = httpx.post(f"{gateway.issuer}/oauth2/revoke",
                         data={"token": second["refresh_token"],
                               "token_type_hint": "refresh_token"},
                         auth=("lms", LMS_SECRET))
    assert revoked.status_code == 200
    assert introspect(second["refresh_token"])["active"] is False
    # Revoking the refresh token ended the grant: its access tokens die with it.
    assert introspect(second["access_token"])["active"] is False
    again = token_request(gateway, grant_type="refresh_token",
                          refresh_token=second["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_reusing_a_refresh_token_revokes_the_family(gateway: ServedGateway) -> None:
    verifier, challenge = pkce()
    with httpx.Client(base_url=gateway.issuer) as browser:
        landing = sign_in(browser, authorize_url(gateway.issuer, challenge, "s", "n"),
                          "alice", "correct horse battery staple")
    code = parse_qs(urlsplit(str(landing)).query)["code"][0]
    first = token_request(gateway, grant_type="authorization_code", code=code,
                          redirect_uri=CALLBACK, code_verifier=verifier).json()
    second = token_request(gateway, grant_type="refresh_token",
                           refresh_token=first["refresh_token"]).json()
    stolen = token_request(gateway, grant_type="refresh_token",
                           refresh_token=first["refresh_token"])
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    # The legitimate holder's newer token is dead too: the whole family is revoked.
    newer = token_request(gateway, grant_type="refresh_token",
                          refresh_token=second["refresh_token"])
    assert newer.status_code == 400 and newer.json()["error"] == "invalid_grant"


def test_client_credentials_token_reaches_the_api(gateway: ServedGateway) -> None:
    answer = httpx.post(f"{gateway.issuer}/oauth2/token",
                        data={"grant_type": "client_credentials", "scope": "roster.read"},
                        auth=("reports", REPORTS_SECRET))
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    token = answer.json()
    assert "refresh_token" not in token
    claims = verify(gateway, token["access_token"], audience="https://api.example.edu",
                    typ="at+jwt")
    assert claims["sub"] == "reports" and claims["client_id"] == "reports"
    api = httpx.get(f"{gateway.issuer}/api/roster",
                    headers={"Authorization": f"Bearer {token['access_token']}"})
    assert api.status_code == 200


def test_signing_keys_rotate_with_overlap(gateway: ServedGateway) -> None:
    token = httpx.post(f"{gateway.issuer}/oauth2/token",
                       data={"grant_type": "client_credentials"},
                       auth=("reports", REPORTS_SECRET)).json()["access_token"]
    old_kid = jwt.get_unverified_header(token)["kid"]
    with gateway.admin_client() as admin:
        rotated = admin.post("/identity/keys/rotate")
    assert rotated.status_code == 200, rotated.text
    kids = {k["kid"] for k in httpx.get(f"{gateway.issuer}/oauth2/jwks").json()["keys"]}
    assert old_kid in kids  # still published: tokens it signed are still valid
    verify(gateway, token, audience="https://api.example.edu")
    fresh = httpx.post(f"{gateway.issuer}/oauth2/token",
                       data={"grant_type": "client_credentials"},
                       auth=("reports", REPORTS_SECRET)).json()["access_token"]
    assert jwt.get_unverified_header(fresh)["kid"] != old_kid
    verify(gateway, fresh, audience="https://api.example.edu")


def test_authlib_relying_party_signs_in_end_to_end(gateway: ServedGateway) -> None:
    """Authlib's own OAuth 2.0 client, configured from the discovery document, does
    what a relying party does: PKCE, state, nonce, code exchange, ID token checks."""
    from authlib.integrations.httpx_client import OAuth2Client
    from authlib.oidc.core import CodeIDToken
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import KeySet

    meta = httpx.get(f"{gateway.issuer}/.well-known/openid-configuration").json()
    client = OAuth2Client("lms", LMS_SECRET, scope="openid profile email",
                          redirect_uri=CALLBACK, code_challenge_method="S256")
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(12)
    url, state = client.create_authorization_url(meta["authorization_endpoint"],
                                                 code_verifier=verifier, nonce=nonce)
    with httpx.Client(base_url=gateway.issuer) as browser:
        landing = sign_in(browser, url, "alice", "correct horse battery staple")
    token = client.fetch_token(meta["token_endpoint"], authorization_response=str(landing),
                               code_verifier=verifier, state=state)
    keys = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
    decoded = jose_jwt.decode(token["id_token"], keys)
    claims = CodeIDToken(decoded.claims, decoded.header,
                         options={"iss": {"value": meta["issuer"]}},
                         params={"nonce": nonce, "client_id": "lms",
                                 "access_token": token["access_token"]})
    claims.validate()
    assert claims["email"] == "alice@example.edu"
    client.token = token
    info = client.get(meta["userinfo_endpoint"])
    assert info.json()["sub"] == claims["sub"]
    client.close()

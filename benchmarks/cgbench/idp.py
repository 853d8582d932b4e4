"""Generated configuration and protocol helpers for the identity provider scenarios.

Three scenarios run campusgate (one worker) with an ``identity:`` section whose
issuer is the proxy listener itself, ``http://127.0.0.1:<port>``:

- ``idp-tokens``: wrk POSTs ``grant_type=client_credentials`` to the token endpoint
  (RFC 6749 4.4) with HTTP Basic client authentication (2.3.1), for a client whose
  access tokens are JWTs (RFC 9068, RS256) and for one whose tokens are opaque;
- ``idp-flows``: a Python driver (``cgbench/flows.py``) plays browsers that sign in
  through the login form once, then run authorization-code flows with PKCE (RFC
  7636, S256) against their session: authorize -> redirect with ``code`` (checked
  for ``state`` and RFC 9207 ``iss``) -> token request with the ``code_verifier``;
- ``idp-jwt``: the plain catch-all route with the ``jwt`` plugin verifying access
  tokens campusgate issued, against its own published JWK Set (``jwks_uri``),
  compared with campusgate's plain throughput of the same run;
- ``idp-sso``: the plain catch-all route behind the ``sso`` plugin, signed in
  through campusgate's own provider: every request carries a session cookie (AES-GCM)
  and reaches the upstream with identity headers; compared with plain likewise.

Everything here but :func:`pkce_pair` and :func:`new_state` is a pure function of
its arguments, so the generated files and the parsing can be tested without
starting anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from cgbench.configs import campusgate_yaml

__all__ = [
    "API_AUDIENCE",
    "API_SCOPE",
    "FLOW_CLIENT",
    "FLOW_SCOPE",
    "IDP_JWT",
    "IDP_JWT_GOAL",
    "IDP_JWT_SUMMARY",
    "IDP_SCENARIOS",
    "IDP_SSO",
    "IDP_SSO_GOAL",
    "IDP_SSO_SUMMARY",
    "JWKS_PATH",
    "JWT_TOKEN_COUNT",
    "PASSWORD",
    "REDIRECT_URI",
    "SECRETS",
    "SSO_CLIENT",
    "SSO_SESSIONS",
    "TOKEN_CLIENTS",
    "TOKEN_TIMEOUT",
    "USERNAME",
    "IdpError",
    "LoginForm",
    "admin_token_from_log",
    "authorization_params",
    "basic_auth",
    "check_token_response",
    "client_credentials_body",
    "code_from_redirect",
    "endpoints_from_discovery",
    "identity_section",
    "idp_yaml",
    "issuer_of",
    "jwt_route_plugin",
    "login_form",
    "new_state",
    "pkce_pair",
    "s256",
    "sso_route_plugin",
    "token_from_response",
    "token_lua",
]

IDP_SCENARIOS = ("idp-tokens", "idp-flows", "idp-jwt", "idp-sso")
IDP_JWT = "idp-jwt"
IDP_SSO = "idp-sso"
#: ``idp-sso`` throughput as a fraction of campusgate plain (same run, same body).
IDP_SSO_GOAL = 0.8
#: Browsers signed in for ``idp-sso``: wrk rotates their session cookies.
SSO_SESSIONS = 20
IDP_SSO_SUMMARY = (f"sso, {SSO_SESSIONS} session cookies rotated (AES-GCM), identity "
                   "headers to the upstream")
#: The ``sso`` plugin's client at campusgate's provider (confidential, no consent).
SSO_CLIENT = "bench-sso"
#: ``idp-jwt`` throughput as a fraction of campusgate plain (same run, same body).
IDP_JWT_GOAL = 0.8
#: Distinct campusgate-issued tokens wrk rotates in ``idp-jwt``.
JWT_TOKEN_COUNT = 100
#: Where campusgate publishes its keys (``jwks_uri`` of its discovery document; the
#: harness checks that the document says so before the load).
JWKS_PATH = "/oauth2/jwks"
IDP_JWT_SUMMARY = f"jwt via campusgate's jwks_uri, RS256, {JWT_TOKEN_COUNT} tokens rotated"

#: wrk's limit on one token response, seconds (its default, 2 s, would count a slow
#: answer as a socket error; the latency columns show how slow they were).
TOKEN_TIMEOUT = 10
#: The operator-defined scope the service clients ask for, and their tokens' ``aud``.
API_SCOPE = "roster.read"
API_AUDIENCE = "https://api.bench.test"
#: ``client_credentials`` clients by access token format (RFC 9068 JWT or opaque).
TOKEN_CLIENTS = {"jwt": "bench-service-jwt", "opaque": "bench-service-opaque"}
#: The web application of ``idp-flows``: confidential, PKCE, no consent screen.
FLOW_CLIENT = "bench-web"
FLOW_SCOPE = "openid profile email"
#: Never followed: the driver reads the code from the ``Location`` header.
REDIRECT_URI = "https://app.bench.test/callback"
#: Client secrets (sealed by campusgate when it applies the file).
SECRETS = {
    TOKEN_CLIENTS["jwt"]: "cgbench-jwt-secret-8f14e45fceea167a",
    TOKEN_CLIENTS["opaque"]: "cgbench-opaque-secret-c9f0f895fb98ab91",
    FLOW_CLIENT: "cgbench-web-secret-45c48cce2e2d7fbd",
    SSO_CLIENT: "cgbench-sso-secret-6512bd43d9caa6e0",
}
#: The user the browsers sign in as (created through the admin API).
USERNAME = "bench.student"
PASSWORD = "cgbench-password-d3d9446802a44259"


class IdpError(ValueError):
    """An identity endpoint answered something a client cannot use."""


def issuer_of(proxy_port: int) -> str:
    """The issuer: the proxy listener itself (http is allowed on loopback)."""
    return f"http://127.0.0.1:{proxy_port}"


def identity_section(issuer: str) -> dict[str, object]:
    """The ``identity:`` section: the two service clients, the web app, one scope."""
    service: dict[str, object] = {
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["client_credentials"], "scopes": [API_SCOPE],
        "audience": [API_AUDIENCE],
    }
    return {
        "issuer": issuer,
        "scopes": [{"name": API_SCOPE, "description": "Read class rosters"}],
        "clients": [
            {"client_id": TOKEN_CLIENTS["jwt"], "client_secret": SECRETS[TOKEN_CLIENTS["jwt"]],
             "access_token_format": "jwt", **service},
            {"client_id": TOKEN_CLIENTS["opaque"],
             "client_secret": SECRETS[TOKEN_CLIENTS["opaque"]],
             "access_token_format": "opaque", **service},
            {"client_id": FLOW_CLIENT, "name": "Bench web app",
             "client_secret": SECRETS[FLOW_CLIENT],
             "token_endpoint_auth_method": "client_secret_basic",
             "redirect_uris": [REDIRECT_URI],
             "grant_types": ["authorization_code", "refresh_token"],
             "scopes": ["openid", "profile", "email", "offline_access"],
             "require_consent": False},
            {"client_id": SSO_CLIENT, "name": "Bench sso",
             "client_secret": SECRETS[SSO_CLIENT],
             "token_endpoint_auth_method": "client_secret_basic",
             "redirect_uris": [issuer + "/_sso/callback"],
             "grant_types": ["authorization_code"],
             "scopes": ["openid", "profile", "email", "roster"],
             "require_consent": False},
        ],
    }


def jwt_route_plugin(issuer: str) -> dict[str, object]:
    """The ``jwt`` plugin trusting campusgate's own keys (``idp-jwt``)."""
    return {"name": "jwt", "config": {
        "jwks_uri": issuer + JWKS_PATH, "issuer": issuer, "audiences": [API_AUDIENCE],
        "algorithms": ["RS256"], "consumer_claim": "client_id", "consumer_optional": True,
    }}


def sso_route_plugin(issuer: str) -> dict[str, object]:
    """The ``sso`` plugin signing in at campusgate's own provider (``idp-sso``); the
    catch-all route's base is ``/``, so its callback is ``/_sso/callback``."""
    return {"name": "sso", "config": {
        "issuer": issuer, "client_id": SSO_CLIENT, "client_secret": SECRETS[SSO_CLIENT],
        "base_path": "/",
    }}


def idp_yaml(*, proxy_port: int, admin_port: int, upstream_port: int, storage: Path,
             route: str | None = None) -> str:
    """campusgate with the identity provider on its proxy listener.

    The catch-all route of ``plain`` stays (the identity endpoints have longer
    prefixes); with ``route="jwt"`` it gets the :func:`jwt_route_plugin`, with
    ``route="sso"`` the :func:`sso_route_plugin`.
    """
    issuer = issuer_of(proxy_port)
    plugins = {"jwt": [jwt_route_plugin(issuer)], "sso": [sso_route_plugin(issuer)],
               None: []}[route]
    return campusgate_yaml(
        proxy_port=proxy_port, admin_port=admin_port, upstream_port=upstream_port,
        storage=storage, route_plugins=plugins, identity=identity_section(issuer))


def endpoints_from_discovery(doc: dict[str, Any], issuer: str) -> dict[str, str]:
    """The endpoint paths the benchmark uses, from the OpenID discovery document.

    Checks what a client relies on (OIDC Discovery 4.3): the document's ``issuer`` is
    the one configured, every endpoint is on it, and the keys are at the ``jwks_uri``
    the ``idp-jwt`` route is configured with.
    """
    if doc.get("issuer") != issuer:
        raise IdpError(f"discovery says issuer {doc.get('issuer')!r}, expected {issuer!r}")
    paths: dict[str, str] = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        url = doc.get(name)
        if not isinstance(url, str) or not url.startswith(issuer + "/"):
            raise IdpError(f"discovery's {name} {url!r} is not under the issuer {issuer}")
        paths[name] = url[len(issuer):]
    if paths["jwks_uri"] != JWKS_PATH:
        raise IdpError(f"discovery's jwks_uri is {paths['jwks_uri']}, the idp-jwt route "
                       f"expects {JWKS_PATH}")
    return paths


def basic_auth(client_id: str, secret: str) -> str:
    """The ``Authorization`` value for client_secret_basic: both parts form-urlencoded
    first (RFC 6749 2.3.1), then Basic (RFC 7617)."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def client_credentials_body(scope: str = API_SCOPE) -> str:
    return urlencode({"grant_type": "client_credentials", "scope": scope})


def token_lua(client_id: str, secret: str, scope: str = API_SCOPE) -> str:
    """A wrk script POSTing a client_credentials token request, the same each time
    (wrk formats a static request once, so its cost is that of a plain GET)."""
    # Form-urlencoded and base64: neither holds a quote or a backslash.
    body = client_credentials_body(scope)
    auth = basic_auth(client_id, secret)
    return f"""-- generated by benchmarks/cgbench/idp.py
wrk.method = "POST"
wrk.body = "{body}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "{auth}"
"""


def _jwt_header(token: str) -> dict[str, Any]:
    head = token.split(".", 1)[0]
    try:
        value = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise IdpError(f"not a JWT: {token[:24]}...") from exc
    if not isinstance(value, dict):
        raise IdpError(f"not a JWT header: {value!r}")
    return value


def check_token_response(status: int, doc: object, access_token_format: str) -> str:
    """The access token of a successful token response (RFC 6749 5.1), checked for
    what the benchmark relies on: a Bearer token of the client's format."""
    if status != 200 or not isinstance(doc, dict):
        raise IdpError(f"token endpoint answered {status}: {str(doc)[:300]}")
    token = doc.get("access_token")
    if not isinstance(token, str) or not token:
        raise IdpError(f"no access_token in {doc!r}")
    if str(doc.get("token_type", "")).lower() != "bearer":
        raise IdpError(f"token_type is {doc.get('token_type')!r}, not Bearer")
    is_jwt = token.count(".") == 2
    if access_token_format == "jwt":
        if not is_jwt or _jwt_header(token).get("typ") not in ("at+jwt", "application/at+jwt"):
            raise IdpError(f"expected an RFC 9068 JWT (typ at+jwt): {token[:40]}...")
    elif is_jwt:
        raise IdpError("expected an opaque access token, got a JWT")
    return token


def token_from_response(status: int, body: bytes, access_token_format: str) -> str:
    """:func:`check_token_response` of a raw response body."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise IdpError(f"token endpoint answered {status} with no JSON: {body[:200]!r}") from exc
    return check_token_response(status, doc, access_token_format)


def admin_token_from_log(text: str) -> str | None:
    """The admin token campusgate prints on its first start (``cgadm_...``)."""
    found = re.findall(r"\b(cgadm_[A-Za-z0-9_-]{43})\b", text)
    return found[-1] if found else None


# ---------------------------------------------------------------- browser side


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge of ``verifier`` (RFC 7636 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, code_challenge): 64 characters of 384 random bits."""
    verifier = secrets.token_urlsafe(48)
    return verifier, s256(verifier)


def new_state() -> str:
    return secrets.token_urlsafe(16)


def authorization_params(*, state: str, nonce: str, code_challenge: str,
                         client_id: str = FLOW_CLIENT, redirect_uri: str = REDIRECT_URI,
                         scope: str = FLOW_SCOPE) -> dict[str, str]:
    """An OpenID Connect authorization request (code flow, PKCE S256)."""
    return {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
            "scope": scope, "state": state, "nonce": nonce, "code_challenge": code_challenge,
            "code_challenge_method": "S256"}


def code_from_redirect(location: str, *, state: str, issuer: str,
                       redirect_uri: str = REDIRECT_URI) -> str:
    """The ``code`` of an authorization response, after the checks a client makes:
    back at its own redirect URI, its ``state``, and ``iss`` = the issuer (RFC 9207)."""
    parts = urlsplit(location)
    if f"{parts.scheme}://{parts.netloc}{parts.path}" != redirect_uri:
        raise IdpError(f"redirected to {location[:200]}, not to the client")
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if "error" in params:
        raise IdpError(f"authorization error {params['error']}: "
                       f"{params.get('error_description', '')}")
    if params.get("state") != state:
        raise IdpError("the authorization response's state is not the request's")
    if params.get("iss") != issuer:
        raise IdpError(f"the authorization response's iss is {params.get('iss')!r} "
                       f"(RFC 9207), expected {issuer!r}")
    code = params.get("code")
    if not code:
        raise IdpError(f"no code in {location[:200]}")
    return code


@dataclass(frozen=True)
class LoginForm:
    """The sign-in form of a login page: where it posts and its hidden fields."""

    action: str
    hidden: dict[str, str] = field(default_factory=dict)
    fields: tuple[str, ...] = ()


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[dict[str, str | None], list[dict[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self.forms.append((dict(attrs), []))
        elif tag == "input" and self.forms:
            self.forms[-1][1].append(dict(attrs))


def login_form(html: str) -> LoginForm:
    """The POST form with a password field on ``html`` (hidden fields, CSRF token
    included; attribute values unescaped)."""
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    for attrs, inputs in parser.forms:
        if (attrs.get("method") or "get").lower() != "post":
            continue
        if not any(i.get("type") == "password" for i in inputs):
            continue
        hidden = {str(i["name"]): i.get("value") or "" for i in inputs
                  if i.get("type") == "hidden" and i.get("name")}
        names = tuple(str(i["name"]) for i in inputs if i.get("name"))
        return LoginForm(attrs.get("action") or "", hidden, names)
    raise IdpError("no sign-in form (method post, with a password field) on the page")

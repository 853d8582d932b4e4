"""The identity provider's settings and its OAuth clients (the ``identity:`` section).

campusgate is its own OAuth 2.0 authorization server and OpenID provider.  Its
settings and registered clients are entities (revisioned, applied from YAML or the
admin API); users, consents, refresh tokens and signing keys are data in the store
(``identity/directory.py``).  Client secrets arrive in plaintext and are sealed like
API keys (a keyed hash plus a visible prefix, ``config/sealing.py``).

Defaults follow RFC 9700 (OAuth 2.0 Security Best Current Practice): no implicit or
password grant, PKCE S256 (``plain`` only when a client opts in), exact redirect URI
matching, short single-use codes, refresh token rotation.
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from campusgate.config.classlink_sandbox import ClassLinkSandbox
from campusgate.config.common import PluginSpec, StrictModel
from campusgate.config.identity_sources import LoginSource

__all__ = [
    "CLIENT_ID_PATTERN",
    "GRANT_TYPES",
    "STANDARD_SCOPES",
    "IdentityClient",
    "IdentityConfig",
    "IdentityScope",
    "LoginThrottle",
    "is_loopback_host",
]

CLIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~:-]{0,127}$"
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
#: OpenID Connect Core 5.4 scopes plus ``openid`` and ``offline_access`` (11), and
#: campusgate's ``roster``: who the person is at school (``identity/claims.py``).
STANDARD_SCOPES = ("openid", "profile", "email", "address", "phone", "offline_access",
                   "roster")
_SCOPE_TOKEN = r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$"  # RFC 6749 section 3.3

Lifetime = int  # seconds; bounds are set per field
GrantType = Literal["authorization_code", "refresh_token", "client_credentials"]


def _default_grants() -> list[GrantType]:
    return ["authorization_code", "refresh_token"]


def is_loopback_host(host: str | None) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1``: hosts a native app listens on (RFC 8252)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_redirect_uri(uri: str) -> str:
    """RFC 6749 3.1.2: absolute, no fragment; RFC 9700 2.1: https, except loopback
    http for native apps and private-use schemes (``com.example.app:/cb``)."""
    parts = urlsplit(uri)
    if not parts.scheme:
        raise ValueError(f"redirect URI {uri!r} must be absolute")
    if parts.fragment or "#" in uri:
        raise ValueError(f"redirect URI {uri!r} must not have a fragment")
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise ValueError(f"redirect URI {uri!r} has no host")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError(f"redirect URI {uri!r}: http is only allowed for loopback "
                             "hosts (use https)")
        if "*" in uri:
            raise ValueError(f"redirect URI {uri!r}: wildcards are not allowed")
    elif parts.scheme in ("javascript", "data", "file", "vbscript"):
        raise ValueError(f"redirect URI {uri!r}: scheme {parts.scheme} is not allowed")
    elif "." not in parts.scheme:
        raise ValueError(f"redirect URI {uri!r}: a private-use scheme must be a reversed "
                         "domain name (RFC 8252 7.1), e.g. com.example.app:/callback")
    return uri


class IdentityClient(StrictModel):
    """An application that signs users in with campusgate, or calls APIs as itself.

    Confidential clients authenticate with ``client_secret_basic`` (default),
    ``client_secret_post`` or ``private_key_jwt`` (``jwks`` or ``jwks_uri``); public
    clients (``none``: single-page and native apps) must use PKCE S256.
    """

    client_id: str = Field(pattern=CLIENT_ID_PATTERN)
    name: str | None = Field(default=None, max_length=200)
    #: Plaintext (from YAML or the admin API); sealed into ``client_secret_hash``.
    client_secret: str | None = Field(default=None, min_length=16, max_length=512)
    client_secret_hash: str | None = Field(default=None, pattern=r"^hk1\$[A-Za-z0-9_-]{43}$")
    client_secret_prefix: str | None = Field(default=None, max_length=16)
    token_endpoint_auth_method: Literal[
        "client_secret_basic", "client_secret_post", "private_key_jwt", "none"
    ] = "client_secret_basic"
    #: Public keys for ``private_key_jwt``: a JWK Set, or where to fetch one.
    jwks: dict[str, object] | None = None
    jwks_uri: str | None = None
    redirect_uris: list[str] = Field(default_factory=list)
    post_logout_redirect_uris: list[str] = Field(default_factory=list)
    grant_types: list[GrantType] = Field(default_factory=_default_grants)
    #: Scopes this client may ask for.
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile", "email", "offline_access"])
    #: ``aud`` of its access tokens (default: the client id).
    audience: list[str] = Field(default_factory=list)
    #: Where a sign-in started elsewhere (a ClassLink LaunchPad tile) sends the browser
    #: once signed in: the app's login-initiation URL (OIDC Core 4), called with ``iss``.
    initiate_login_uri: str | None = None
    access_token_format: Literal["jwt", "opaque"] = "jwt"
    access_token_lifetime: Lifetime = Field(default=3600, ge=30, le=86400)
    id_token_lifetime: Lifetime = Field(default=3600, ge=30, le=86400)
    refresh_token_lifetime: Lifetime = Field(default=30 * 86400, ge=60, le=365 * 86400)
    id_token_signed_response_alg: Literal["RS256", "ES256"] = "RS256"
    #: Ask the user before sharing their data (remembered per client and scope set).
    #: Turn off only for the operator's own first-party apps.
    require_consent: bool = True
    #: Accept PKCE ``plain`` (RFC 7636) from this client; S256 is always accepted.
    allow_pkce_plain: bool = False
    #: May introspect tokens issued to other clients (a resource server, the gateway).
    can_introspect: bool = False
    tags: list[str] = Field(default_factory=list)

    @field_validator("redirect_uris")
    @classmethod
    def _redirects(cls, value: list[str]) -> list[str]:
        return [_check_redirect_uri(uri) for uri in value]

    @field_validator("post_logout_redirect_uris")
    @classmethod
    def _logout_redirects(cls, value: list[str]) -> list[str]:
        return [_check_redirect_uri(uri) for uri in value]

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        import re

        bad = [s for s in value if not re.match(_SCOPE_TOKEN, s)]
        if bad:
            raise ValueError(f"invalid scope token(s): {', '.join(map(repr, bad))}")
        return value

    @field_validator("initiate_login_uri")
    @classmethod
    def _initiate_login(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme != "https" and not (parts.scheme == "http"
                                                 and is_loopback_host(parts.hostname)):
                raise ValueError("initiate_login_uri must be an https URL (OIDC Core 4)")
        return value

    @field_validator("jwks_uri")
    @classmethod
    def _jwks_uri(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("jwks_uri must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> IdentityClient:
        method = self.token_endpoint_auth_method
        has_secret = self.client_secret is not None or self.client_secret_hash is not None
        if self.client_secret is not None and self.client_secret_hash is not None:
            raise ValueError("give client_secret or client_secret_hash, not both")
        if method in ("client_secret_basic", "client_secret_post") and not has_secret:
            raise ValueError(f"{method} needs a client_secret")
        if method in ("none", "private_key_jwt") and has_secret:
            raise ValueError(f"a client using {method} has no client_secret")
        if method == "private_key_jwt" and (self.jwks is None) == (self.jwks_uri is None):
            raise ValueError("private_key_jwt needs exactly one of jwks or jwks_uri")
        if self.jwks is not None and not isinstance(self.jwks.get("keys"), list):
            raise ValueError("jwks must be a JWK Set: {\"keys\": [...]}")
        if method == "none" and "client_credentials" in self.grant_types:
            raise ValueError("a public client (none) cannot use client_credentials")
        if not self.grant_types:
            raise ValueError("grant_types must not be empty")
        if len(set(self.grant_types)) != len(self.grant_types):
            raise ValueError("grant_types has duplicates")
        if "authorization_code" in self.grant_types and not self.redirect_uris:
            raise ValueError("authorization_code needs at least one redirect_uri")
        if "refresh_token" in self.grant_types and "authorization_code" not in self.grant_types:
            raise ValueError("refresh_token is only issued with authorization_code")
        return self

    @property
    def public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    def token_audience(self) -> list[str]:
        return self.audience or [self.client_id]


class IdentityScope(StrictModel):
    """A scope the operator defines (beyond ``openid profile email ...``)."""

    name: str = Field(pattern=_SCOPE_TOKEN)
    description: str = Field(default="", max_length=500)
    #: User claims (from the user's ``claims``) this scope releases to userinfo and the
    #: ID token.
    claims: list[str] = Field(default_factory=list)


class LoginThrottle(StrictModel):
    """Brute-force protection: failed logins counted per account and per client IP."""

    #: Failed attempts allowed per account within ``window``...
    per_account: int = Field(default=5, ge=1, le=1000)
    #: ...and per client address.
    per_ip: int = Field(default=30, ge=1, le=100000)
    window: int = Field(default=900, ge=10, le=86400)
    #: How long sign-in stays refused once a limit is reached.
    lockout: int = Field(default=900, ge=1, le=86400)


class IdentityConfig(StrictModel):
    """The built-in OAuth 2.0 authorization server and OpenID provider."""

    #: The issuer identifier: an https URL (http only on a loopback host), no query or
    #: fragment.  Every endpoint URL it advertises is derived from it.
    issuer: str
    clients: list[IdentityClient] = Field(default_factory=list)
    scopes: list[IdentityScope] = Field(default_factory=list)
    #: Authorization codes live this long (RFC 9700 4.2: short; 10 min at most).
    code_lifetime: int = Field(default=60, ge=5, le=600)
    #: A sign-in lasts this long without activity...
    session_idle_lifetime: int = Field(default=8 * 3600, ge=60, le=30 * 86400)
    #: ...and at most this long.
    session_lifetime: int = Field(default=24 * 3600, ge=60, le=90 * 86400)
    login_throttle: LoginThrottle = Field(default_factory=LoginThrottle)
    #: Plugins on the identity endpoints (rate limits, ip restriction, ...).
    plugins: list[PluginSpec] = Field(default_factory=list)
    #: Other identity providers people may sign in with (``config/identity_sources.py``).
    sources: list[LoginSource] = Field(default_factory=list)
    #: Answer ClassLink's own paths, as a test district (``config/classlink_sandbox.py``).
    classlink_sandbox: ClassLinkSandbox | None = None

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("issuer must be an https URL, e.g. https://id.example.edu")
        if parts.query or parts.fragment or "?" in value or "#" in value:
            raise ValueError("issuer must not have a query or fragment (OIDC Discovery 3)")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError("issuer must use https (http only for localhost)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _unique(self) -> IdentityConfig:
        ids = [c.client_id for c in self.clients]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate client_id: {', '.join(dupes)}")
        names = [s.name for s in self.scopes]
        clash = sorted({n for n in names if names.count(n) > 1 or n in STANDARD_SCOPES})
        if clash:
            raise ValueError(f"scope(s) defined twice or clashing with standard scopes: "
                             f"{', '.join(clash)}")
        sources = [s.name for s in self.sources]
        twice = sorted({n for n in sources if sources.count(n) > 1})
        if twice:
            raise ValueError(f"duplicate login source name: {', '.join(twice)}")
        known = set(STANDARD_SCOPES) | set(names)
        for client in self.clients:
            unknown = [s for s in client.scopes if s not in known]
            if unknown:
                raise ValueError(f"client {client.client_id!r} allows undefined scope(s) "
                                 f"{', '.join(unknown)}: define them under identity.scopes")
        return self

    @property
    def issuer_path(self) -> str:
        """The issuer's path ('' or '/idp'): endpoints live under it."""
        return urlsplit(self.issuer).path.rstrip("/")

    def client(self, client_id: str) -> IdentityClient | None:
        for client in self.clients:
            if client.client_id == client_id:
                return client
        return None

    def source(self, name: str) -> LoginSource | None:
        return next((s for s in self.sources if s.name == name), None)

    def max_token_lifetime(self) -> int:
        """The longest a JWT signed now stays valid: keys overlap this long."""
        return max([3600] + [max(c.access_token_lifetime, c.id_token_lifetime)
                             for c in self.clients])

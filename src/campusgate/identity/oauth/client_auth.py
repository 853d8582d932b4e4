"""Client authentication at the token, revocation and introspection endpoints.

Authlib's ``ClientAuthentication`` registry does the checking, with its three
built-in methods (RFC 6749 2.3.1 ``client_secret_basic`` -- form-urlencoded id and
secret in HTTP Basic -- and ``client_secret_post``; ``none`` for public clients)
and :class:`PrivateKeyJWT`, Authlib's RFC 7523 ``JWTBearerClientAssertion``.
:class:`ClientAuthenticator` adds the rules around it:

- A request uses exactly one mechanism (RFC 6749 2.3: "MUST NOT use more than one
  authentication method in each request"): the one it presents is the only one
  tried, so a wrong Basic secret cannot fall through to ``none``.
- A client may only use its registered ``token_endpoint_auth_method``.
- A ``client_id`` parameter must name the client that authenticated.
- Any failure is ``invalid_client``, 401 with a ``Basic`` challenge.

``private_key_jwt`` (RFC 7523 2.2, 3; OIDC Core 9): the assertion is signed by a key
of the client's ``jwks`` (or of its ``jwks_uri``, fetched and kept five minutes);
``iss`` = ``sub`` = the client id, ``aud`` = the token endpoint URL or the issuer,
``exp`` required and at most an hour ahead, ``jti`` used once (claimed in the
ephemeral store until the assertion expires).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
from authlib.oauth2.rfc6749 import ClientAuthentication  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.errors import (  # type: ignore[import-untyped]
    InvalidClientError,
    InvalidRequestError,
)
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from campusgate.identity.oauth.errors import InvalidClient
from campusgate.identity.paths import TOKEN

if TYPE_CHECKING:
    from campusgate.identity.context import IdentityContext
    from campusgate.identity.oauth.clients import OAuthClient

__all__ = ["ASSERTION_TYPE", "ClientAuthenticator", "JwksCache", "PrivateKeyJWT",
           "presented_method"]

log = logging.getLogger("campusgate.identity")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Clock skew allowed on an assertion's exp, nbf and iat.
LEEWAY = 30
#: An assertion may not be valid for longer than this (its jti is kept that long).
MAX_ASSERTION_LIFETIME = 3600
#: How long a fetched ``jwks_uri`` document is trusted.
JWKS_TTL = 300.0
JWKS_TIMEOUT = 5.0


def _safe(text: str) -> str:
    """``text`` restricted to what an ``error_description`` may hold (RFC 6749 5.2)."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "'" for c in text)


def presented_method(request: Any) -> str:
    """The one authentication method ``request`` uses (see the module docstring)."""
    auth = request.headers.get("Authorization") or ""
    form = request.form
    basic = auth[:6].lower() == "basic "
    assertion = "client_assertion" in form or "client_assertion_type" in form
    secret = "client_secret" in form
    if basic + assertion + secret > 1:
        raise InvalidRequestError("Use exactly one client authentication method.")
    if basic:
        return "client_secret_basic"
    if assertion:
        return "private_key_jwt"
    if secret:
        return "client_secret_post"
    if form.get("client_id"):
        return "none"
    raise InvalidClient("Client authentication is required.")


class ClientAuthenticator(ClientAuthentication):  # type: ignore[misc]
    """Authlib's registry with one mechanism per request and 401 on failure."""

    def authenticate(self, request: Any, methods: list[str], endpoint: str) -> OAuthClient:
        method = presented_method(request)
        if method not in methods:
            raise InvalidClient(f"{method} is not accepted here.")
        try:
            client: OAuthClient = super().authenticate(request, [method], endpoint)
        except InvalidClientError as exc:
            raise InvalidClient(_safe(exc.get_error_description() or "")) from exc
        named = request.form.get("client_id")
        if named is not None and named != client.client_id:
            raise InvalidClient("client_id does not name the authenticated client.")
        return client


class JwksCache:
    """Clients' ``jwks_uri`` documents, fetched from a grant thread, kept briefly."""

    def __init__(self, ttl: float = JWKS_TTL) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._sets: dict[str, tuple[float, KeySet]] = {}

    def get(self, uri: str) -> KeySet:
        now = time.monotonic()
        with self._lock:
            cached = self._sets.get(uri)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            response = httpx.get(uri, timeout=JWKS_TIMEOUT, follow_redirects=False)
            response.raise_for_status()
            keys = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, TypeError, JoseError) as exc:
            log.warning("identity: cannot read the jwks_uri %s: %s", uri, exc)
            raise InvalidClient("The client's jwks_uri could not be read.") from exc
        with self._lock:
            self._sets[uri] = (now + self.ttl, keys)
        return keys


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    """RFC 7523 client assertions (see the module docstring)."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, ctx: IdentityContext, jwks: JwksCache) -> None:
        super().__init__(validate_jti=True, leeway=LEEWAY)
        self.ctx = ctx
        self.jwks = jwks

    def get_audiences(self) -> list[str]:
        return [self.ctx.url(TOKEN), self.ctx.issuer]

    def resolve_client_public_key(self, client: OAuthClient) -> KeySet:
        config = client.config
        if config.jwks is not None:
            try:
                return KeySet.import_key_set(config.jwks)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError) as exc:
                raise InvalidClient("The client's jwks cannot be used.") from exc
        if config.jwks_uri is None:
            raise InvalidClient("The client has no public keys.")
        return self.jwks.get(config.jwks_uri)

    def verify_claims(self, claims: dict[str, Any]) -> None:
        """Authlib's checks, on the context's clock, plus the bounded lifetime."""
        registry = jwt.JWTClaimsRegistry(
            now=self.ctx.now, leeway=LEEWAY, iss={"essential": True},
            sub={"essential": True}, jti={"essential": True}, exp={"essential": True},
            aud={"essential": True, "values": self.get_audiences()})
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise InvalidClient(_safe(exc.description or exc.error)) from exc
        if claims["sub"] != claims["iss"]:
            raise InvalidClient("The assertion's iss and sub must both be the client id.")
        remaining = int(claims["exp"]) - self.ctx.now()
        if remaining > MAX_ASSERTION_LIFETIME:
            raise InvalidClient("The assertion expires too far in the future.")
        if not self.validate_jti(claims, claims["jti"]):
            raise InvalidClient("The assertion has been used before.")

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        key = hashlib.sha256(f"{claims['sub']}\x00{jti}".encode()).hexdigest()
        ttl = max(1, int(claims["exp"]) - self.ctx.now() + LEEWAY)
        claimed: bool = self.ctx.call(self.ctx.ephemeral.claim("jti", key, ttl))
        return claimed

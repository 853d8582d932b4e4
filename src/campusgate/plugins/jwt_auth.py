"""``jwt``: authenticate with a signed JSON Web Token (RFC 7519) as a bearer token.

The token comes from a header (``Authorization: Bearer <jwt>`` by default, RFC 6750
section 2.1), a query parameter or a cookie.  Its key is found one of two ways:

- **a consumer's** ``jwt`` **credential**: the claim named by ``key_claim`` (``iss``
  by default), or else the header's ``kid``, equals the credential's ``key``; the
  token's ``alg`` must be the credential's algorithm, and the consumer is the
  credential's owner;
- **a JWK Set** at ``jwks_uri``, by ``kid``: the consumer is the one the
  ``consumer_claim`` names (by ``consumer_by``), if any.

Verification is :mod:`campusgate.auth.jwt_verify`.  A verified token is remembered
(keyed by the whole token) with its consumer until its ``exp``: seeing it
again costs a hash and a lookup, not a signature check.  The request waits only when
the key set must be fetched.  Every refusal is a 401 with a ``Bearer`` challenge
carrying ``error="invalid_token"`` (RFC 6750 section 3.1).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args
from urllib.parse import unquote_plus

from joserfc.jwk import Key
from pydantic import Field, field_validator, model_validator

from campusgate.auth import http_url
from campusgate.auth.jwks import Fetch, JwksCache, shared_jwks
from campusgate.auth.jwt_verify import (
    KEY_TYPES,
    ClaimsPolicy,
    KeyImportError,
    TokenCache,
    TokenError,
    UnverifiedToken,
    allowed_algorithm,
    check_claims,
    import_credential_key,
    parse_token,
    verify_signature,
)
from campusgate.plugins.authentication import AuthAnswer, AuthConfig, AuthPlugin, Identity
from campusgate.plugins.base import WAIT, PluginEnv, Wait
from campusgate.proxy.consumers import ConsumerInfo, JwtKey
from campusgate.proxy.context import RequestContext

__all__ = ["JwtAuthConfig", "JwtAuthPlugin"]

log = logging.getLogger("campusgate.plugins.jwt")

Algorithm = Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384",
                    "PS512", "ES256", "ES384", "ES512", "EdDSA"]
TimeClaim = Literal["exp", "nbf"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
DEFAULT_CLAIMS: tuple[TimeClaim, ...] = ("exp",)
HeaderName = str
#: Verified tokens remembered per plugin instance.
CACHE_SIZE = 10_000
#: A token without ``exp`` is remembered at most this long.
CACHE_CEILING = 3600.0


class JwtAuthConfig(AuthConfig):
    """Settings of the ``jwt`` plugin."""

    #: Headers the token may come in, as ``Bearer <jwt>`` (or bare, in a header other
    #: than Authorization); an empty list turns headers off.
    header_names: list[HeaderName] = Field(default_factory=lambda: ["authorization"])
    #: Query parameters the token may come in.
    query_param_names: list[str] = Field(default_factory=list)
    #: Cookies the token may come in.
    cookie_names: list[str] = Field(default_factory=list)
    #: The claim whose value names the consumer credential (its ``key``); the header's
    #: ``kid`` is tried when this claim does not match.
    key_claim: str = Field(default="iss", min_length=1)
    #: Algorithms accepted (``alg`` of the token); ``none`` never is.
    algorithms: list[Algorithm] = Field(default_factory=lambda: list(ALGORITHMS), min_length=1)
    #: A JWK Set URL: tokens whose ``kid`` is a key of that set are accepted too.
    jwks_uri: str | None = None
    #: For tokens verified with ``jwks_uri``: the claim that names the consumer.
    consumer_claim: str | None = Field(default=None, min_length=1)
    #: How ``consumer_claim`` names the consumer: by ``name`` or ``custom_id``.
    consumer_by: Literal["name", "custom_id"] = "name"
    #: Accept a ``jwks_uri`` token whose ``consumer_claim`` names no consumer (it then
    #: has no consumer) instead of refusing it.
    consumer_optional: bool = False
    #: The ``iss`` every token must have, if set.
    issuer: str | None = None
    #: If set, the token's ``aud`` must name at least one of these.
    audiences: list[str] = Field(default_factory=list)
    #: Time claims every token must carry; ``exp`` and ``nbf`` are checked whenever present.
    claims_to_verify: list[TimeClaim] = Field(default_factory=lambda: list(DEFAULT_CLAIMS))
    #: Seconds of clock skew allowed for ``exp``, ``nbf`` and ``iat``.
    leeway: float = Field(default=30, ge=0, le=3600)
    #: Refuse tokens that live longer than this many seconds (``exp`` minus ``iat``).
    max_lifetime: float | None = Field(default=None, gt=0)

    @field_validator("header_names")
    @classmethod
    def _header_tokens(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name or any(c in name for c in ' \t:()<>@,;\\"/[]?={}'):
                raise ValueError(f"{name!r} is not a header name")
        return [n.lower() for n in names]

    @field_validator("query_param_names", "cookie_names")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        if any(not n or any(c in n for c in "&=; ") for n in names):
            raise ValueError("names must be non-empty, without '&', '=', ';' or spaces")
        return names

    @field_validator("jwks_uri")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @model_validator(mode="after")
    def _consistent(self) -> JwtAuthConfig:
        if not (self.header_names or self.query_param_names or self.cookie_names):
            raise ValueError("give at least one of header_names, query_param_names, "
                             "cookie_names")
        if self.max_lifetime is not None and "exp" not in self.claims_to_verify:
            raise ValueError('max_lifetime needs "exp" in claims_to_verify')
        if self.consumer_claim is not None and self.jwks_uri is None:
            raise ValueError("consumer_claim maps tokens verified with jwks_uri; tokens "
                             "verified with a consumer's credential belong to that consumer")
        if self.jwks_uri is not None and all(KEY_TYPES[a] == "oct" for a in self.algorithms):
            raise ValueError("jwks_uri holds public keys: allow at least one asymmetric "
                             "algorithm")
        return self


@dataclass(frozen=True, slots=True)
class _Verified:
    identity: Identity
    #: The key set generation the token was checked against (None: a credential key).
    generation: int | None


@dataclass(slots=True)
class _Found:
    token: bytes
    kind: Literal["header", "query", "cookie"]
    name: bytes


@dataclass(frozen=True, slots=True)
class _Resolved:
    key: Key
    consumer: ConsumerInfo | None
    credential: str | None
    generation: int | None


class JwtAuthPlugin(AuthPlugin):
    name = "jwt"
    priority = 1450
    config_model = JwtAuthConfig
    scheme = "Bearer"

    def __init__(self, config: JwtAuthConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.cfg = config
        self.header_names = tuple(n.encode() for n in config.header_names)
        self.query_names = tuple(config.query_param_names)
        self.cookie_names = tuple(n.encode() for n in config.cookie_names)
        self.allowed = frozenset(config.algorithms)
        self.policy = ClaimsPolicy(config.issuer, frozenset(config.audiences),
                                   frozenset(config.claims_to_verify), config.leeway,
                                   config.max_lifetime)
        self.jwks: JwksCache | None = (shared_jwks(env.resources, config.jwks_uri)
                                       if config.jwks_uri else None)
        self.verified: TokenCache[_Verified] = TokenCache(CACHE_SIZE)
        #: Credential keys, imported on first use (or why they cannot be used).
        self._keys: dict[JwtKey, Key | str] = {}
        #: Seconds since the epoch (tests move it).
        self.clock = time.time

    def authenticate_now(self, ctx: RequestContext) -> AuthAnswer | Wait:
        return self._authenticate(ctx, may_wait=True)

    async def authenticate(self, ctx: RequestContext) -> AuthAnswer:
        answer = self._authenticate(ctx, may_wait=True)
        if isinstance(answer, Wait):
            assert self.jwks is not None
            await self.jwks.refresh()
            answer = self._authenticate(ctx, may_wait=False)
        assert not isinstance(answer, Wait)
        return answer

    # ------------------------------------------------------------ the check

    def _authenticate(self, ctx: RequestContext, may_wait: bool) -> AuthAnswer | Wait:
        found = self._find(ctx)
        if found is None:
            return None
        now = self.clock()
        # Keyed by the whole token (never by the signature alone: a valid signature on
        # another payload must not hit); a dict hash of the bytes is cheaper than SHA-256.
        digest = found.token
        hit = self.verified.get(digest, now)
        if hit is not None and (hit.generation is None or (
                self.jwks is not None and hit.generation == self.jwks.generation)):
            # the entry expires with the token (exp + leeway); nbf was already past
            self._hide(ctx, found)
            return hit.identity
        try:
            token = parse_token(found.token)
            allowed_algorithm(token, self.allowed)
            resolved = self._resolve(token, may_wait)
            if isinstance(resolved, Wait):
                return WAIT
            verify_signature(token, resolved.key)
            window = check_claims(token.claims, self.policy, now)
            consumer = (resolved.consumer if resolved.generation is None
                        else self._consumer_of(token))
        except TokenError as exc:
            return self.reject(ctx, str(exc), error="invalid_token", code="invalid_token")
        identity = Identity(consumer, resolved.credential, MappingProxyType(token.claims))
        ceiling = now + CACHE_CEILING
        expires = ceiling if window.exp is None else min(window.exp + self.cfg.leeway, ceiling)
        self.verified.put(digest, _Verified(identity, resolved.generation), expires)
        self._hide(ctx, found)
        return identity

    def _resolve(self, token: UnverifiedToken, may_wait: bool) -> _Resolved | Wait:
        """The key for ``token``: a consumer credential's, else the key set's."""
        credential = self._credential_for(token)
        if credential is not None:
            if token.alg != credential.algorithm:
                raise TokenError(f"the token's algorithm {token.alg} is not its "
                                 f"credential's ({credential.algorithm})")
            return _Resolved(self._credential_key(credential), credential.consumer,
                             credential.credential, None)
        if self.jwks is None:
            raise TokenError(f"no credential matches the token's {self.cfg.key_claim} "
                             "claim or kid")
        answer = self.jwks.lookup(token.kid, token.alg, may_fetch=may_wait)
        if isinstance(answer, Fetch):
            return WAIT
        if isinstance(answer, str):
            raise TokenError(answer)
        return _Resolved(answer, None, token.kid or answer.kid, self.jwks.generation)

    def _credential_for(self, token: UnverifiedToken) -> JwtKey | None:
        consumers = self.env.consumers
        if consumers is None or not consumers.jwt:
            return None
        value = token.claim(self.cfg.key_claim)
        found = consumers.jwt.get(value) if value else None
        if found is None and token.kid:
            found = consumers.jwt.get(token.kid)
        return found

    def _credential_key(self, credential: JwtKey) -> Key:
        key = self._keys.get(credential)
        if key is None:
            try:
                key = import_credential_key(credential.algorithm, credential.secret,
                                            credential.public_key)
            except KeyImportError as exc:
                log.error("jwt credential %s of consumer %s cannot be used: %s",
                          credential.credential, credential.consumer.name, exc)
                key = str(exc)
            self._keys[credential] = key
        if isinstance(key, str):
            raise TokenError("the credential for this token has no usable key")
        return key

    def _consumer_of(self, token: UnverifiedToken) -> ConsumerInfo | None:
        claim = self.cfg.consumer_claim
        if claim is None:
            return None
        value = token.claim(claim)
        consumer = self.consumer_for(value, self.cfg.consumer_by) if value else None
        if consumer is None and not self.cfg.consumer_optional:
            raise TokenError(f"the token's {claim} claim names no consumer")
        return consumer

    # ------------------------------------------------------------ where the token is

    def _find(self, ctx: RequestContext) -> _Found | None:
        for name in self.header_names:
            value = ctx.header(name)
            if value is None:
                continue
            scheme, _, rest = value.strip().partition(b" ")
            if scheme.lower() == b"bearer":
                return _Found(rest.strip(), "header", name)
            if name != b"authorization":  # a bare token in a header of its own
                return _Found(value.strip(), "header", name)
        if self.query_names and ctx.query:
            for part in ctx.query.split("&"):
                param, _, text = part.partition("=")
                if unquote_plus(param) in self.query_names:
                    return _Found(unquote_plus(text).encode("latin-1", "replace"), "query",
                                  param.encode("latin-1", "replace"))
        if self.cookie_names:
            for header, cookies in ctx.headers:
                if header != b"cookie":
                    continue
                for pair in cookies.split(b";"):
                    cookie, _, token = pair.strip().partition(b"=")
                    if cookie in self.cookie_names:
                        return _Found(token.strip(b'"'), "cookie", cookie)
        return None

    def _hide(self, ctx: RequestContext, found: _Found) -> None:
        """Keep the token from the upstream (``hide_credentials``)."""
        if found.kind == "header":
            self.strip(ctx, found.name)
        elif not self.auth.hide_credentials:
            return
        elif found.kind == "query":
            name = found.name.decode("latin-1")
            ctx.query = "&".join(p for p in ctx.query.split("&")
                                 if p.partition("=")[0] != name)
        else:
            pairs = [pair.strip() for header, value in ctx.headers if header == b"cookie"
                     for pair in value.split(b";")]
            rest = [p for p in pairs if p and p.partition(b"=")[0] != found.name]
            ctx.upstream_headers_remove.add(b"cookie")
            if rest:
                ctx.upstream_headers_add.append((b"cookie", b"; ".join(rest)))


PLUGIN = JwtAuthPlugin

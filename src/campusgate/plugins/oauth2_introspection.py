"""``oauth2-introspection``: bearer tokens checked by the authorization server that
issued them (OAuth 2.0 Token Introspection, RFC 7662).

For a token not seen before the gateway asks the ``introspection_url`` (request and
answer: :mod:`campusgate.auth.introspection`) and remembers the answer by the token's
SHA-256: an active token for ``cache_ttl`` (never past its ``exp``), an inactive one
for ``negative_cache_ttl``.  Concurrent requests with the same new token share one
call.

A token that is a JWT from one of the ``jwt_issuers`` is a JWT access token (RFC 9068)
and is checked here, with the issuer's key set, without a call: signature, ``typ``,
``iss``, ``exp``/``nbf``, ``aud``.

Answers: not active or invalid -> 401 ``invalid_token``; a scope in
``required_scopes`` missing -> 403 ``insufficient_scope`` (RFC 6750 section 3.1); the
endpoint down, slow or answering nonsense -> 503 ``introspection_unavailable`` (the
token may well be fine, so it is not a 401).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from campusgate.auth import http_url
from campusgate.auth.introspection import (
    IntrospectionUnavailable,
    Introspector,
    TokenInfo,
    cache_expiry,
    shared_http_client,
)
from campusgate.auth.jwks import Fetch, KeySource, shared_jwks
from campusgate.auth.jwt_verify import (
    ASYMMETRIC_ALGORITHMS,
    ClaimsPolicy,
    TokenCache,
    TokenError,
    UnverifiedToken,
    allowed_algorithm,
    check_access_token_type,
    check_claims,
    parse_token,
    verify_signature,
)
from campusgate.plugins.authentication import AuthAnswer, AuthConfig, AuthPlugin, Identity
from campusgate.plugins.base import WAIT, PluginEnv, Wait
from campusgate.proxy.context import LocalResponse, RequestContext

__all__ = ["IntrospectionConfig", "JwtIssuer", "OAuth2IntrospectionPlugin", "TrustedIssuer",
           "trusted_issuers"]

log = logging.getLogger("campusgate.plugins.oauth2_introspection")

#: Answers remembered per plugin instance.
CACHE_SIZE = 10_000
#: Seconds between two log lines about an unusable endpoint.
LOG_INTERVAL = 30.0
#: RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+\Z")


class JwtIssuer(BaseModel):
    """An issuer whose JWT access tokens are checked locally (RFC 9068)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The ``iss`` of its tokens.
    issuer: str = Field(min_length=1)
    #: Its JWK Set URL (fetched when first needed, kept, refreshed on key rotation).
    jwks_uri: str
    #: If set, the token's ``aud`` must name at least one of these.
    audiences: list[str] = Field(default_factory=list)
    #: Refuse tokens whose ``typ`` is not ``at+jwt`` (RFC 9068 section 4).
    require_at_jwt: bool = True

    @field_validator("jwks_uri")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)


class IntrospectionConfig(AuthConfig):
    """Settings of the ``oauth2-introspection`` plugin."""

    #: The authorization server's introspection endpoint (RFC 7662 section 2).
    introspection_url: str
    #: The gateway's client id at the authorization server.
    client_id: str = Field(min_length=1)
    #: The gateway's client secret (sent with HTTP Basic, RFC 6749 section 2.3.1).
    client_secret: str = Field(min_length=1)
    #: Sent as ``token_type_hint``; null sends none.
    token_type_hint: str | None = "access_token"
    #: Seconds to wait for the endpoint before answering 503.
    timeout: float = Field(default=2.0, gt=0, le=60)
    #: Seconds an active answer is remembered (never past the token's ``exp``); 0: not at all.
    cache_ttl: float = Field(default=60.0, ge=0)
    #: Seconds an inactive answer is remembered; 0: not at all.
    negative_cache_ttl: float = Field(default=10.0, ge=0)
    #: Scopes the token must all have, else 403 ``insufficient_scope``.
    required_scopes: list[str] = Field(default_factory=list)
    #: The answer's member that names the consumer (``client_id``, ``sub``, ``username``...).
    consumer_claim: str = Field(default="client_id", min_length=1)
    #: How ``consumer_claim`` names the consumer: by ``name`` or ``custom_id``.
    consumer_by: Literal["name", "custom_id"] = "name"
    #: Accept a token whose ``consumer_claim`` names no consumer (it then has no
    #: consumer); false refuses it with 401.
    consumer_optional: bool = True
    #: Issuers whose JWT access tokens are verified here, without a call: a list of
    #: ``{issuer, jwks_uri, audiences, require_at_jwt}``.
    jwt_issuers: list[JwtIssuer] = Field(default_factory=list)
    #: Seconds of clock skew allowed when checking those JWTs.
    leeway: float = Field(default=30.0, ge=0, le=3600)

    @field_validator("introspection_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("required_scopes")
    @classmethod
    def _scopes(cls, scopes: list[str]) -> list[str]:
        for scope in scopes:
            if not _SCOPE_TOKEN.match(scope):
                raise ValueError(f"{scope!r} is not a scope token (RFC 6749 section 3.3)")
        return scopes

    @model_validator(mode="after")
    def _distinct_issuers(self) -> IntrospectionConfig:
        issuers = [i.issuer for i in self.jwt_issuers]
        if len(issuers) != len(set(issuers)):
            raise ValueError("jwt_issuers names an issuer twice")
        return self


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """An issuer whose JWT access tokens are verified here, with no introspection call."""

    issuer: str
    keys: KeySource
    policy: ClaimsPolicy
    require_at_jwt: bool = True


def trusted_issuers(config: IntrospectionConfig, env: PluginEnv) -> dict[str, TrustedIssuer]:
    """The issuers whose tokens are checked locally, by ``iss``."""
    issuers = {
        spec.issuer: TrustedIssuer(
            spec.issuer, shared_jwks(env.resources, spec.jwks_uri),
            ClaimsPolicy(spec.issuer, frozenset(spec.audiences), frozenset({"exp"}),
                         config.leeway),
            spec.require_at_jwt)
        for spec in config.jwt_issuers}
    # campusgate's own identity provider joins here with its signing keys, e.g.
    #   issuers[idp.issuer] = TrustedIssuer(idp.issuer, StaticKeys.of(*idp.keys), policy)
    return issuers


@dataclass(frozen=True, slots=True)
class _Known:
    info: TokenInfo
    #: For a locally verified JWT: its key source and that source's generation then.
    keys: KeySource | None = None
    generation: int = 0


class OAuth2IntrospectionPlugin(AuthPlugin):
    name = "oauth2-introspection"
    priority = 1700
    config_model = IntrospectionConfig
    scheme = "Bearer"

    def __init__(self, config: IntrospectionConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.cfg = config
        self.issuers = trusted_issuers(config, env)
        self.required = frozenset(config.required_scopes)
        self.cache: TokenCache[_Known] = TokenCache(CACHE_SIZE)
        self._inflight: dict[bytes, asyncio.Task[TokenInfo]] = {}
        self._introspector: Introspector | None = None
        self._logged_at = -LOG_INTERVAL
        #: Seconds since the epoch (tests move it).
        self.clock = time.time

    def authenticate_now(self, ctx: RequestContext) -> AuthAnswer | Wait:
        token = self._bearer(ctx)
        if token is None:
            return None
        return self._without_call(ctx, token, may_wait=True)

    async def authenticate(self, ctx: RequestContext) -> AuthAnswer:
        token = self._bearer(ctx)
        if token is None:
            return None
        answer = self._without_call(ctx, token, may_wait=True)
        if not isinstance(answer, Wait):
            return answer
        local = self._local_issuer(token)
        if local is not None:  # its key set must be fetched first
            await local[0].keys.refresh()
            answer = self._without_call(ctx, token, may_wait=False)
            assert not isinstance(answer, Wait)
            return answer
        try:
            info = await self._introspect(token)
        except IntrospectionUnavailable as exc:
            return self._unavailable(ctx, str(exc))
        return self._answer(ctx, info)

    # ------------------------------------------------------------ without a call

    def _without_call(self, ctx: RequestContext, token: str,
                      may_wait: bool) -> AuthAnswer | Wait:
        """The answer from the cache or a local JWT check; WAIT when an introspection
        call or a key fetch is needed."""
        if not token:
            return self._invalid(ctx, "the bearer token is empty")
        now = self.clock()
        digest = _digest(token)
        known = self.cache.get(digest, now)
        if known is not None and (known.keys is None
                                  or known.keys.generation == known.generation):
            return self._answer(ctx, known.info)
        local = self._local_issuer(token)
        if local is None:
            return WAIT
        issuer, parsed = local
        try:
            verified = self._verify_locally(issuer, parsed, now, may_wait)
        except TokenError as exc:
            return self._invalid(ctx, str(exc))
        if isinstance(verified, Wait):
            return WAIT
        info, generation = verified
        expires = cache_expiry(info, now, self.cfg.cache_ttl, 0)
        if expires is not None:
            self.cache.put(digest, _Known(info, issuer.keys, generation), expires)
        return self._answer(ctx, info)

    def _local_issuer(self, token: str) -> tuple[TrustedIssuer, UnverifiedToken] | None:
        if not self.issuers or token.count(".") != 2:
            return None
        try:
            parsed = parse_token(token.encode("latin-1", "replace"))
        except TokenError:
            return None  # not a JWT we can read: the authorization server decides
        issuer = self.issuers.get(parsed.claim("iss") or "")
        return None if issuer is None else (issuer, parsed)

    def _verify_locally(self, issuer: TrustedIssuer, token: UnverifiedToken, now: float,
                        may_wait: bool) -> tuple[TokenInfo, int] | Wait:
        """RFC 9068 section 4: the checks a resource server makes on a JWT access token."""
        allowed_algorithm(token, ASYMMETRIC_ALGORITHMS)
        if issuer.require_at_jwt:
            check_access_token_type(token)
        generation = issuer.keys.generation
        key = issuer.keys.lookup(token.kid, token.alg, may_fetch=may_wait)
        if isinstance(key, Fetch):
            return WAIT
        if isinstance(key, str):
            raise TokenError(key)
        verify_signature(token, key)
        check_claims(token.claims, issuer.policy, now)
        return TokenInfo(True, MappingProxyType(token.claims)), generation

    # ------------------------------------------------------------ the call

    async def _introspect(self, token: str) -> TokenInfo:
        """One call per token at a time: concurrent requests wait for the same answer."""
        digest = _digest(token)
        task = self._inflight.get(digest)
        if task is None:
            task = self.env.loop.create_task(self._call(token, digest))
            self._inflight[digest] = task
            task.add_done_callback(lambda done: self._call_done(digest, done))
        return await asyncio.shield(task)

    async def _call(self, token: str, digest: bytes) -> TokenInfo:
        if self._introspector is None:
            cfg = self.cfg
            self._introspector = Introspector(
                cfg.introspection_url, cfg.client_id, cfg.client_secret, cfg.token_type_hint,
                cfg.timeout, shared_http_client(self.env.resources))
        info = await self._introspector.introspect(token)
        now = self.clock()
        expires = cache_expiry(info, now, self.cfg.cache_ttl, self.cfg.negative_cache_ttl)
        if expires is not None:
            self.cache.put(digest, _Known(info), expires)
        return info

    def _call_done(self, digest: bytes, task: asyncio.Task[TokenInfo]) -> None:
        self._inflight.pop(digest, None)
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter went away

    # ------------------------------------------------------------ answers

    def _answer(self, ctx: RequestContext, info: TokenInfo) -> AuthAnswer:
        if not info.active:
            return self._invalid(ctx, "the token is not active")
        if not self.required <= info.scopes:
            return self._insufficient_scope(ctx)
        value = info.claims.get(self.cfg.consumer_claim)
        consumer = (self.consumer_for(value, self.cfg.consumer_by)
                    if isinstance(value, str) else None)
        if consumer is None and not self.cfg.consumer_optional:
            return self._invalid(ctx, f"the token's {self.cfg.consumer_claim} names no "
                                      "consumer")
        client_id = info.claims.get("client_id")
        self.strip(ctx, b"authorization")
        return Identity(consumer, client_id if isinstance(client_id, str) else None,
                        info.claims)

    def _invalid(self, ctx: RequestContext, message: str) -> LocalResponse:
        return self.reject(ctx, message, error="invalid_token", code="invalid_token")

    def _insufficient_scope(self, ctx: RequestContext) -> LocalResponse:
        scope = " ".join(self.cfg.required_scopes)
        message = f"the token lacks a required scope ({scope})"
        challenge = self.challenge("insufficient_scope", message) + f', scope="{scope}"'.encode()
        return LocalResponse.error(403, "insufficient_scope", message, ctx.request_id,
                                   [(b"www-authenticate", challenge)])

    def _unavailable(self, ctx: RequestContext, reason: str) -> LocalResponse:
        now = time.monotonic()
        if now - self._logged_at >= LOG_INTERVAL:
            self._logged_at = now
            log.warning("oauth2-introspection at %s (%s): %s", self.cfg.introspection_url,
                        self.env.scope, reason)
        return LocalResponse.error(503, "introspection_unavailable",
                                   "the token could not be checked: the authorization "
                                   "server did not answer usefully", ctx.request_id)

    @staticmethod
    def _bearer(ctx: RequestContext) -> str | None:
        value = ctx.header(b"authorization")
        if value is None:
            return None
        scheme, _, token = value.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        return token.strip().decode("latin-1")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("latin-1", "replace")).digest()


PLUGIN = OAuth2IntrospectionPlugin

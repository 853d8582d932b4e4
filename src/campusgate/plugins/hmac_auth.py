"""``hmac-auth``: requests signed with a shared secret (the scheme is described in
:mod:`campusgate.auth.hmac_signature` and docs/plugins/hmac-auth.md).

A signature is accepted once: its hash is recorded in the state backend for twice the
clock skew (the longest a date stays acceptable), so a captured request cannot be
sent again.  With the in-process backend the whole check is synchronous and stays on
the proxy's fast path; with Redis it waits for one ``SET NX``.

Request bodies: a request with a body must sign a ``digest`` header, and its
``content-length`` must be within ``max_body_bytes``.  The plugin takes part in the
request-body phase: the proxy buffers such a body and :meth:`HmacAuthPlugin.
verify_body_digest` checks it against the signed digest before anything is sent
upstream.
"""

from __future__ import annotations

import hashlib
import time
from typing import Literal

from pydantic import Field, field_validator

from campusgate.auth.hmac_signature import (
    PSEUDO_HEADERS,
    SignatureError,
    SignatureParams,
    check_date,
    check_digest_header,
    digest_matches,
    parse_authorization,
    scheme_algorithm,
    signing_string,
    verify,
)
from campusgate.plugins.authentication import AuthAnswer, AuthConfig, AuthPlugin, Identity
from campusgate.plugins.base import WAIT, PluginEnv, Wait
from campusgate.proxy.context import LocalResponse, RequestContext
from campusgate.state.base import StateUnavailable

__all__ = ["DIGEST_VAR", "HmacAuthConfig", "HmacAuthPlugin"]

#: ``ctx.vars`` key: the signed ``digest`` header of a request with a body, which
#: :meth:`HmacAuthPlugin.verify_body_digest` checks against the body.
DIGEST_VAR = "hmac-auth.digest"
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")
_UNVERIFIED = "the signature cannot be verified"

Algorithm = Literal["hmac-sha256", "hmac-sha512"]


def _all_algorithms() -> list[Algorithm]:
    return ["hmac-sha256", "hmac-sha512"]


class HmacAuthConfig(AuthConfig):
    algorithms: list[Algorithm] = Field(
        default_factory=_all_algorithms, min_length=1,
        description="Signature algorithms accepted.")
    enforce_headers: list[str] = Field(
        default_factory=lambda: ["@method", "@path"],
        description="Names every signature must cover, besides the date (and the digest "
                    "of a request with a body).")
    clock_skew: float = Field(
        default=300.0, gt=0, le=3600,
        description="Seconds the request's date or x-date may differ from the "
                    "gateway's clock.")
    max_body_bytes: int = Field(
        default=1_048_576, ge=0, le=104_857_600,
        description="Largest content-length of a signed request; bodies must have a "
                    "content-length (no chunked bodies).")
    backend: Literal["memory", "redis", "default"] = Field(
        default="default",
        description="Where used signatures are recorded (replay protection): memory "
                    "(this worker), redis, or default (the state setting).")

    @field_validator("enforce_headers")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        out = [name.lower() for name in value]
        for name in out:
            if name.startswith("@") and name not in PSEUDO_HEADERS:
                raise ValueError(f"unknown pseudo-header {name!r} (known: @method, @path)")
            if not name.startswith("@") and (not name or not set(name) <= _TOKEN_CHARS):
                raise ValueError(f"{name!r} is not a header name")
        return out


def _has_body(ctx: RequestContext) -> tuple[bool, int | None]:
    """(has a body, its content-length if given)."""
    length: int | None = None
    for name, value in ctx.headers:
        if name == b"transfer-encoding":
            return True, None
        if name == b"content-length":
            length = int(value) if value.isdigit() else -1
    return bool(length), length


class HmacAuthPlugin(AuthPlugin):
    name = "hmac-auth"
    priority = 1030
    config_model = HmacAuthConfig
    scheme = "HMAC-SHA256"

    def __init__(self, config: HmacAuthConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.cfg = config
        self.algorithms = frozenset(config.algorithms)
        self.enforce = tuple(config.enforce_headers)
        self.state = env.resources.state(config.backend)
        self.replay_ttl = 2 * config.clock_skew
        #: The clock dates are checked against (Unix time); tests may replace it.
        self.clock = time.time

    def challenge(self, error: str | None = None, description: str | None = None) -> bytes:
        """The realm, and the names a signature must cover."""
        names = " ".join((*self.enforce, "date"))
        return super().challenge(error, description) + f', headers="{names}"'.encode()

    # ---------------------------------------------------------------- the checks
    def _check(self, ctx: RequestContext) -> tuple[Identity, str] | LocalResponse | None:
        """Everything but the replay check: (identity, replay key), a refusal, or
        None when there is no HMAC ``Authorization``."""
        value = ctx.header(b"authorization")
        if value is None:
            return None
        try:
            params = parse_authorization(value)
            if params is None:
                return None
            refusal = self._check_shape(ctx, params)
            if refusal is not None:
                return refusal
            message = signing_string(ctx.method, ctx.path, ctx.query, ctx.headers,
                                     params.headers)
        except SignatureError as exc:
            return self.reject(ctx, str(exc))
        consumers = self.env.consumers
        entry = consumers.hmac.get(params.key_id) if consumers is not None else None
        if entry is None or not verify(params, entry[2], message):
            return self.reject(ctx, _UNVERIFIED)
        self.strip(ctx, b"authorization")
        digest = ctx.header(b"digest")
        if digest is not None and _has_body(ctx)[0]:
            ctx.vars[DIGEST_VAR] = digest.decode("latin-1")
        replay_key = "hmac-auth:" + hashlib.sha256(params.signature).hexdigest()
        return Identity(entry[0], entry[1]), replay_key

    def _check_shape(self, ctx: RequestContext, params: SignatureParams) -> LocalResponse | None:
        """What the signature must cover, the date, and the body's framing
        (SignatureError for what the client got wrong)."""
        if params.algorithm not in self.algorithms:
            raise SignatureError(f"algorithm {params.algorithm} is not accepted here")
        signed = params.headers
        missing = [name for name in self.enforce if name not in signed]
        if missing:
            raise SignatureError("the signature must cover " + ", ".join(missing))
        name = b"x-date" if ctx.header(b"x-date") is not None else b"date"
        date = ctx.header(name)
        if date is None:
            raise SignatureError("a date or x-date header is required")
        if name.decode() not in signed:
            raise SignatureError(f"the signature must cover {name.decode()}")
        check_date(date, self.clock(), self.cfg.clock_skew)
        has_body, length = _has_body(ctx)
        digest = ctx.header(b"digest")
        if has_body:
            if digest is None or "digest" not in signed:
                raise SignatureError("a request with a body must sign a digest header")
            if length is None:
                return LocalResponse.error(411, "length_required", "hmac-auth needs a "
                                           "content-length on signed bodies", ctx.request_id)
            if length < 0 or length > self.cfg.max_body_bytes:
                return LocalResponse.error(413, "payload_too_large", "the signed body is "
                                           "larger than hmac-auth accepts", ctx.request_id)
            check_digest_header(digest.decode("latin-1"))
        elif digest is not None and not digest_matches(digest.decode("latin-1"), b""):
            raise SignatureError("the digest does not match the body")
        return None

    # ---------------------------------------------------------------- the phases
    def authenticate_now(self, ctx: RequestContext) -> AuthAnswer | Wait:
        if self.state.waits:  # the replay check needs I/O: only "none of mine" is sure now
            value = ctx.header(b"authorization")
            return None if value is None or scheme_algorithm(value) is None else WAIT
        checked = self._check(ctx)
        if not isinstance(checked, tuple):
            return checked
        identity, replay_key = checked
        if self.state.get_now(replay_key) is not None:
            return self.reject(ctx, "replayed request")
        self.state.set_now(replay_key, b"1", self.replay_ttl)
        return identity

    async def authenticate(self, ctx: RequestContext) -> AuthAnswer:
        checked = self._check(ctx)
        if not isinstance(checked, tuple):
            return checked
        identity, replay_key = checked
        try:
            fresh = await self.state.add(replay_key, b"1", self.replay_ttl)
        except StateUnavailable:
            return LocalResponse.error(503, "state_unavailable", "replay protection is "
                                       "unavailable; try again", ctx.request_id)
        return identity if fresh else self.reject(ctx, "replayed request")

    def verify_body_digest(self, ctx: RequestContext, body: bytes) -> LocalResponse | None:
        """Check a signed request's body against its signed ``digest`` header: None
        when it matches (or the request was not authenticated by this plugin), else
        the refusal.  Meant for the request-body hook, which hands it the whole body."""
        digest = ctx.vars.get(DIGEST_VAR)
        if digest is None:
            return None
        if len(body) > self.cfg.max_body_bytes:
            return LocalResponse.error(413, "payload_too_large", "the signed body is "
                                       "larger than hmac-auth accepts", ctx.request_id)
        try:
            if digest_matches(digest, body):
                return None
        except SignatureError as exc:
            return self.reject(ctx, str(exc))
        return self.reject(ctx, "the digest does not match the body")

    # The request-body phase: the proxy buffers the body of a request this plugin
    # authenticated (it carries a signed digest) and hands it over before proxying.
    def wants_request_body(self, ctx: RequestContext) -> bool:
        return DIGEST_VAR in ctx.vars

    def request_body(self, ctx: RequestContext, body: bytes) -> bytes | LocalResponse:
        refusal = self.verify_body_digest(ctx, body)
        return body if refusal is None else refusal


PLUGIN = HmacAuthPlugin

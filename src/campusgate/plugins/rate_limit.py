"""``rate-limit``: at most N requests per window, per consumer, credential, address,
header value, route or service -- from per second to per month, so quotas are this
plugin too.

Counting and the headers are the state layer's (:mod:`campusgate.state.ratelimit`):
``sliding-window`` (the sliding window counter) or ``token-bucket`` (GCRA), several
windows checked at once, the ``RateLimit-Policy`` and ``RateLimit`` fields of
draft-ietf-httpapi-ratelimit-headers-11 (sections 3 and 4), and ``Retry-After``
(RFC 9110, section 10.2.3) on a 429 (RFC 6585, section 4).  This module decides
*whose* counter a request goes on and what the client is told.

The counter key is ``<scope>|<by>=<identity>``: the scope the plugin is attached at
(``route:NAME``, ``global``...), so the same limit on two routes is two counters while
a global limit counts a consumer across every route.  A request without the identity
(no consumer, no header...) is counted by client address instead: ``<scope>|ip=ADDR``.

With the ``memory`` backend the check is synchronous (the callback-only fast path);
with ``redis`` it waits for one atomic script.  When Redis cannot answer, ``on_error``
says whether the request passes (fail open) or gets a 503 (fail closed); either way
a warning is logged at most once per :data:`WARN_INTERVAL` seconds per plugin.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from campusgate.plugins.base import WAIT, AccessAnswer, Plugin, PluginConfig, PluginEnv
from campusgate.proxy.addresses import AddressSet, client_address
from campusgate.proxy.consumers import ConsumerInfo
from campusgate.proxy.context import LocalResponse, RequestContext
from campusgate.state.base import StateUnavailable, WarningThrottle
from campusgate.state.ratelimit import (
    Decision,
    Window,
    policy_header_value,
    rate_limit_headers,
)
from campusgate.state.redis import NeedsTask

__all__ = ["LimitSpec", "RateLimitConfig", "RateLimitPlugin", "WarningThrottle"]

log = logging.getLogger(__name__)

#: Seconds between two warnings of one plugin about an unavailable state backend.
WARN_INTERVAL = 10.0
#: Header values longer than this (or not printable ASCII) are hashed in the key.
MAX_KEY_VALUE = 64
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 section 5.1 field-name

By = Literal["consumer", "credential", "ip", "header", "route", "service"]


class LimitSpec(BaseModel):
    """One window: at most ``limit`` requests (cost units) per ``window``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The window's length: a count and a unit -- s, m, h, d, w, mo (30 days).
    window: str
    #: Requests (cost units) admitted per window.
    limit: int = Field(ge=1)

    @model_validator(mode="after")
    def _valid_window(self) -> LimitSpec:
        Window.of(self.window, self.limit)  # raises ValueError with the reason
        return self

    def build(self) -> Window:
        return Window.of(self.window, self.limit)


class RateLimitConfig(PluginConfig):
    limits: list[LimitSpec] = Field(
        min_length=1,
        description="The windows, checked together: a list of `{window: 1m, limit: 100}` "
                    "(units s, m, h, d, w, mo = 30 days); a request must fit in every "
                    "one. Windows must be of different lengths.")
    by: By = Field(
        default="consumer",
        description="Whose counter: `consumer`, `credential` (the credential's id), `ip` "
                    "(the client address, honouring `trusted_proxies`), `header` (the "
                    "value of `header_name`), `route` or `service` (everyone together). "
                    "Requests without one (no consumer, the header absent) are counted "
                    "by client address.")
    header_name: str | None = Field(
        default=None, description="The header counted by, with `by: header` (only then).")
    algorithm: Literal["sliding-window", "token-bucket"] = Field(
        default="sliding-window",
        description="`sliding-window` (sliding window counter) or `token-bucket` (GCRA).")
    backend: Literal["default", "memory", "redis"] = Field(
        default="default",
        description="Where counters live: `default` (the `state` setting), `memory` "
                    "(each worker its own) or `redis` (needs `state: redis://...`).")
    on_error: Literal["allow", "deny"] = Field(
        default="allow",
        description="When Redis cannot answer: `allow` the request (fail open) or "
                    "`deny` it with a 503 (fail closed).")
    cost: int = Field(default=1, ge=1, description="Units one request uses.")
    headers: bool = Field(
        default=True,
        description="Send `RateLimit-Policy` and `RateLimit` on every response; when "
                    "false, a 429 carries only `Retry-After`.")
    error_message: str = Field(
        default="API rate limit exceeded", description="Message of the 429's JSON error.")

    @field_validator("header_name")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is not None and not _TOKEN.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid header name")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RateLimitConfig:
        if (self.by == "header") != (self.header_name is not None):
            raise ValueError("header_name is required with by: header, and only then")
        seen: dict[float, str] = {}
        for spec in self.limits:
            seconds = spec.build().seconds
            if seconds in seen:
                raise ValueError(f"limits: windows {seen[seconds]} and {spec.window} are "
                                 "the same length; give each window once")
            seen[seconds] = spec.window
        smallest = min(spec.limit for spec in self.limits)
        if self.cost > smallest:
            raise ValueError(f"cost {self.cost} is more than the limit {smallest}: no "
                             "request would ever be admitted")
        return self




def _key_value(raw: bytes) -> str:
    """A header value as it goes in a key: itself when short and printable, else a
    digest (so a client cannot make keys of kilobytes)."""
    if len(raw) <= MAX_KEY_VALUE and all(0x21 <= b <= 0x7E for b in raw):
        return "=" + raw.decode("ascii")
    return "#" + hashlib.blake2b(raw, digest_size=16).hexdigest()


#: ``ctx.vars`` key: the Redis check in flight on the callback path.
PENDING_VAR = "rate-limit.pending"


class RateLimitPlugin(Plugin):
    name = "rate-limit"
    priority = 910
    config_model = RateLimitConfig

    def __init__(self, config: RateLimitConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        # One tuple for the plugin's life: the Redis backend caches its encoded
        # command by the tuple's identity; the policy header depends only on it.
        self.windows = tuple(spec.build() for spec in config.limits)
        self.policy = policy_header_value(self.windows)
        self.single = len(self.windows) == 1
        #: The window's name as a structured-field string (``"1m"``).
        self.label = self.policy.partition(b";")[0]
        self.state = env.resources.state(config.backend)
        self.waits = self.state.waits
        self.algorithm = config.algorithm
        self.cost = config.cost
        self.by = config.by
        self.header = config.header_name.lower().encode() if config.header_name else b""
        self.send_headers = config.headers
        self.message = config.error_message
        self.fail_open = config.on_error == "allow"
        self.trusted = AddressSet(env.resources.trusted_proxies)
        self.prefix = env.scope + "|"
        self._consumer_keys: dict[ConsumerInfo, str] = {}
        self.throttle = WarningThrottle(WARN_INTERVAL)

    # ---------------------------------------------------------------- the key

    def identity(self, ctx: RequestContext) -> str | None:
        """``by``'s part of the key (``=value`` or ``#digest``), None when missing."""
        by = self.by
        if by == "consumer":
            consumer = ctx.consumer
            return None if consumer is None or consumer.anonymous else "=" + consumer.name
        if by == "credential":
            return None if not ctx.credential else "=" + ctx.credential
        if by == "header":
            value = (ctx.header(self.header) or b"").strip()
            return _key_value(value) if value else None
        if by == "route":
            return None if ctx.route is None else "=" + ctx.route.name
        if by == "service":
            return None if ctx.service is None else "=" + ctx.service.name
        return None  # by == "ip"

    def key(self, ctx: RequestContext) -> str:
        """``<scope>|<by>=<identity>``, or ``<scope>|ip=<client address>``."""
        consumer = ctx.consumer
        if self.by == "consumer" and consumer is not None and not consumer.anonymous:
            key = self._consumer_keys.get(consumer)
            if key is None:
                if len(self._consumer_keys) > 65536:
                    self._consumer_keys.clear()
                key = self._consumer_keys[consumer] = f"{self.prefix}consumer={consumer.name}"
            return key
        found = self.identity(ctx)
        if found is not None:
            return f"{self.prefix}{self.by}{found}"
        addr = client_address(ctx.client_ip, ctx.headers, self.trusted)
        return f"{self.prefix}ip={ctx.client_ip if addr is None else addr}"

    # ---------------------------------------------------------------- access

    def access_now(self, ctx: RequestContext) -> AccessAnswer:
        if self.waits:
            return WAIT
        decision = self.state.ratelimit_now(self.key(ctx), self.windows, self.algorithm,
                                            self.cost)
        return self.answer(ctx, decision)

    def access_start(self, ctx: RequestContext) -> asyncio.Future[Any] | None:
        start = getattr(self.state, "ratelimit_start", None)
        if start is None:
            return None
        pending = start(self.key(ctx), self.windows, self.algorithm, self.cost)
        if pending is None:
            return None
        ctx.vars[PENDING_VAR] = pending
        fut: asyncio.Future[Any] = pending.future
        return fut

    def access_finish(self, ctx: RequestContext, done: asyncio.Future[Any]) -> AccessAnswer:
        pending = ctx.vars.pop(PENDING_VAR)
        try:
            decision = pending.result()
        except NeedsTask:
            return WAIT  # the script must be loaded: the task path does it, nothing counted
        except StateUnavailable as exc:
            return self.unavailable(ctx, exc)
        return self.answer(ctx, decision)

    async def access(self, ctx: RequestContext) -> LocalResponse | None:
        try:
            decision = await self.state.ratelimit(self.key(ctx), self.windows,
                                                  self.algorithm, self.cost)
        except StateUnavailable as exc:
            return self.unavailable(ctx, exc)
        return self.answer(ctx, decision)

    def answer(self, ctx: RequestContext, decision: Decision) -> LocalResponse | None:
        """None (with the RateLimit fields queued for the response) or a 429."""
        ctx.rate_limit = "allowed" if decision.allowed else "limited"
        if decision.allowed:
            if self.send_headers:
                if self.single:  # one window: its line, without the general renderer
                    status = decision.windows[0]
                    ctx.response_headers_add += (
                        (b"ratelimit-policy", self.policy),
                        (b"ratelimit", b"%s;r=%d;t=%d" % (self.label, status.remaining,
                                                           status.reset)))
                else:
                    ctx.response_headers_add.extend(rate_limit_headers(decision, self.policy))
            return None
        if self.send_headers:
            headers = rate_limit_headers(decision, self.policy)
        else:
            headers = [(b"retry-after", b"%d" % decision.retry_after)]
        return LocalResponse.error(429, "rate_limited", self.message, ctx.request_id, headers)

    def unavailable(self, ctx: RequestContext, exc: StateUnavailable) -> LocalResponse | None:
        """Fail open (None) or closed (503), warning now and then."""
        held = self.throttle.due()
        if held is not None:
            log.warning(
                "rate-limit (%s): the %s state is unavailable (%s); %s%s",
                self.env.scope, self.state.kind, exc,
                "admitting requests unchecked" if self.fail_open
                else "refusing requests with 503",
                f" ({held} more failures since the last warning)" if held else "")
        if self.fail_open:
            return None
        return LocalResponse.error(
            503, "rate_limit_unavailable",
            "the rate limit cannot be checked right now; try again shortly",
            ctx.request_id, [(b"retry-after", b"1")])


PLUGIN = RateLimitPlugin

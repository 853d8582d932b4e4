"""``proxy-cache``: answer repeated GET/HEAD requests from a cache (RFC 9111, as a
shared cache).

A cacheable request is looked up by a key made of the parts ``cache_key`` names
(method, host, path, sorted query, consumer) and the ``vary_headers``, within the
plugin's scope and route.  A hit is answered in the access phase, synchronously with
the ``memory`` strategy, after one round trip with ``redis``; a miss goes upstream,
and a cacheable answer (status, media type, Cache-Control, Vary, size) is stored as
it goes to the client.  ``X-Cache-Status`` says which: ``Hit``, ``Miss``,
``Refresh`` (the client asked for a fresh copy) or ``Bypass`` (not cacheable, or the
store is unreachable: a cache failure never fails a request).  Hits carry ``Age``.

Stored are the response's status, body and headers as the upstream sent them (after
any body-phase plugin of higher priority, such as ``response-transformer``'s JSON
operations); header plugins run again on every hit, so their work is never doubled.
A HEAD request is answered from the GET entry; HEAD responses (no body) are not
stored.  Responses with ``Set-Cookie``, ``Cache-Control: no-store``, ``private`` or
``no-cache``, or a ``Vary`` on a header outside ``vary_headers`` are never stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Final, Literal

from pydantic import Field, field_validator

from campusgate.plugins._http_cache import (
    CacheEntry,
    cache_control,
    freshness,
    media_type,
    storable_vary,
)
from campusgate.plugins.base import WAIT, AccessAnswer, Plugin, PluginConfig, PluginEnv
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext
from campusgate.state.base import StateUnavailable, WarningThrottle

__all__ = ["ProxyCacheConfig", "ProxyCachePlugin"]

log = logging.getLogger("campusgate.plugins.proxy_cache")

_STATUS: Final = "proxy-cache.status"
_KEY: Final = "proxy-cache.key"
_TTL: Final = "proxy-cache.ttl"
_AGE: Final = "proxy-cache.age"
#: Response headers never stored (a hit gets its own Age).
_NOT_STORED = (b"set-cookie", b"age")


Method = Literal["GET", "HEAD"]
KeyPart = Literal["method", "host", "path", "query", "consumer"]


def _methods() -> list[Method]:
    return ["GET", "HEAD"]


def _key_parts() -> list[KeyPart]:
    return ["method", "host", "path", "query", "consumer"]


class ProxyCacheConfig(PluginConfig):
    #: Where entries live: ``memory`` (this worker), ``redis`` (shared; needs the
    #: ``state`` setting to be a redis:// URL) or ``default`` (the ``state`` setting).
    strategy: Literal["memory", "redis", "default"] = "memory"
    #: Seconds an entry is kept.
    ttl: float = Field(default=300, gt=0)
    #: Media types stored (Content-Type without parameters).
    content_types: list[str] = Field(
        default_factory=lambda: ["text/plain", "application/json"])
    #: Status codes stored.
    response_codes: list[int] = Field(default_factory=lambda: [200, 301, 404])
    #: Request methods looked up (a HEAD is answered from the GET entry).
    request_methods: list[Method] = Field(default_factory=_methods)
    #: What tells entries apart: ``method``, ``host``, ``path``, ``query`` (its
    #: parameters sorted) and ``consumer`` (the caller; keep it when answers depend on
    #: who calls).
    cache_key: list[KeyPart] = Field(default_factory=_key_parts)
    #: Request headers whose values are part of the key (and that a response's
    #: ``Vary`` may name).
    vary_headers: list[str] = Field(default_factory=list)
    #: Larger responses are streamed to the client and not stored.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    #: Honour the client's Cache-Control (``no-cache``: refresh the entry, ``no-store``:
    #: bypass) and cap ``ttl`` by the response's ``s-maxage`` / ``max-age``.
    cache_control: bool = False

    @field_validator("content_types", "vary_headers")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value]

    @field_validator("response_codes")
    @classmethod
    def _codes(cls, value: list[int]) -> list[int]:
        for code in value:
            if not 200 <= code <= 599 or code in (204, 206, 304):
                raise ValueError(f"status {code} cannot be cached here (200-599, "
                                 "not 204, 206 or 304)")
        return value


class ProxyCachePlugin(Plugin):
    name = "proxy-cache"
    priority = 100
    config_model = ProxyCacheConfig
    warn_unbuffered = False  # large responses are simply not stored

    def __init__(self, config: ProxyCacheConfig, env: PluginEnv) -> None:
        super().__init__(config, env)
        self.state = env.resources.state(config.strategy)
        self.throttle = WarningThrottle()
        self.ttl = config.ttl
        self.methods = frozenset(config.request_methods)
        self.key_parts = tuple(config.cache_key)
        self.vary = tuple(h.encode("latin-1") for h in config.vary_headers)
        self.keyed = frozenset(config.vary_headers)
        self.types = frozenset(config.content_types)
        self.codes = frozenset(config.response_codes)
        self.honour_request = config.cache_control
        self.body_limit = config.max_body_bytes
        self._stores: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- access
    def access_now(self, ctx: RequestContext) -> AccessAnswer:
        if self.state.waits and ctx.method in self.methods:
            return WAIT
        key = self._key(ctx)
        if key is None:
            return None
        try:
            return self._answer(ctx, key, self.state.get_now(key))
        except StateUnavailable:
            self._bypass(ctx)
            return None

    async def access(self, ctx: RequestContext) -> LocalResponse | None:
        key = self._key(ctx)
        if key is None:
            return None
        try:
            return self._answer(ctx, key, await self.state.get(key))
        except StateUnavailable as exc:
            self._warn("the store is unavailable (%s); bypassing", exc)
            self._bypass(ctx)
            return None

    @staticmethod
    def _bypass(ctx: RequestContext) -> None:
        ctx.vars[_STATUS] = b"Bypass"

    def _key(self, ctx: RequestContext) -> str | None:
        """The cache key, or None when this request bypasses the cache (or, with a
        client's ``no-cache``, goes upstream to refresh the entry)."""
        if ctx.method not in self.methods:
            self._bypass(ctx)
            return None
        if self.honour_request:
            directives = cache_control(ctx.headers)
            if "no-store" in directives:
                self._bypass(ctx)
                return None
            if "no-cache" in directives:
                ctx.vars[_STATUS] = b"Refresh"
                ctx.vars[_KEY] = self._digest(ctx)
                return None
        return self._digest(ctx)

    def _digest(self, ctx: RequestContext) -> str:
        route = ctx.route.name if ctx.route is not None else ""
        parts = [self.env.scope, route]
        for part in self.key_parts:
            if part == "method":
                parts.append("GET" if ctx.method == "HEAD" else ctx.method)
            elif part == "host":
                parts.append(ctx.host.lower())
            elif part == "path":
                parts.append(ctx.path)
            elif part == "query":
                parts.append("&".join(sorted(p for p in ctx.query.split("&") if p)))
            else:
                parts.append(ctx.consumer.id if ctx.consumer is not None else "")
        for name in self.vary:
            parts.append(",".join(v.decode("latin-1") for n, v in ctx.headers if n == name))
        digest = hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass"))
        return "proxy-cache:" + digest.hexdigest()

    def _answer(self, ctx: RequestContext, key: str, raw: bytes | None) -> LocalResponse | None:
        entry = None
        if raw is not None:
            try:
                entry = CacheEntry.decode(raw)
            except ValueError:
                log.warning("proxy-cache: an unreadable entry under %s; ignored", key)
        if entry is None:
            ctx.vars[_STATUS] = b"Miss"
            ctx.vars[_KEY] = key
            return None
        ctx.vars[_STATUS] = b"Hit"
        ctx.vars[_AGE] = max(0, int(time.time() - entry.stored_at))
        content_type = b"application/octet-stream"
        headers: HeaderList = []
        for name, value in entry.headers:
            if name == b"content-type":
                content_type = value
            else:
                headers.append((name, value))
        return LocalResponse(entry.status, entry.body, headers, content_type)

    # ---------------------------------------------------------------- response
    def wants_response_body(self, ctx: RequestContext, status: int,
                            headers: HeaderList) -> bool:
        if _KEY not in ctx.vars:
            return False
        directives = cache_control(headers)
        ttl = freshness(directives, self.ttl) if self.honour_request else self.ttl
        if (status not in self.codes or media_type(headers) not in self.types
                or any(n == b"set-cookie" for n, _ in headers)
                or not directives.keys().isdisjoint(("no-store", "private", "no-cache"))
                or not storable_vary(headers, self.keyed) or ttl <= 0):
            ctx.vars[_STATUS] = b"Bypass"
            return False
        ctx.vars[_TTL] = ttl
        return True

    def response_body(self, ctx: RequestContext, status: int, headers: HeaderList,
                      body: bytes) -> bytes:
        key = ctx.vars[_KEY]
        entry = CacheEntry(status, [h for h in headers if h[0] not in _NOT_STORED], body,
                           time.time()).encode()
        ttl: float = ctx.vars[_TTL]
        if not self.state.waits:
            try:
                self.state.set_now(key, entry, ttl)
            except StateUnavailable as exc:
                self._warn("could not store an entry: %s", exc)
            return body
        task = self.env.loop.create_task(self._store(key, entry, ttl))
        self._stores.add(task)
        task.add_done_callback(self._stores.discard)
        return body

    async def _store(self, key: str, entry: bytes, ttl: float) -> None:
        try:
            await self.state.set(key, entry, ttl)
        except StateUnavailable as exc:
            self._warn("could not store an entry: %s", exc)

    def _warn(self, message: str, exc: StateUnavailable) -> None:
        """At most one warning per interval while the store is down, not one per
        request."""
        held = self.throttle.due()
        if held is not None:
            log.warning("proxy-cache (%s): " + message + "%s", self.env.scope, exc,
                        f" ({held} more since the last warning)" if held else "")

    def response(self, ctx: RequestContext, status: int, headers: HeaderList) -> None:
        state = ctx.vars.get(_STATUS)
        if state is None:
            return  # answered before the cache was consulted (auth, a limit...)
        headers.append((b"x-cache-status", state))
        if state == b"Hit":
            headers.append((b"age", b"%d" % ctx.vars[_AGE]))


PLUGIN = ProxyCachePlugin

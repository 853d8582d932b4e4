"""Where a matched request goes: an HTTP upstream (balanced, pooled, retried) or an
in-process ASGI app.

Both backends take the client connection, the request and its context, and answer
the client themselves; errors they cannot answer raise :class:`ProxyError`.  On a
route with body-phase plugins they also get its :class:`BodyHooks` and buffer what
those plugins ask for (``proxy/bodies.py``); otherwise bodies stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from campusgate.config.model import Service
from campusgate.plugins.base import Plugin
from campusgate.proxy import wire
from campusgate.proxy.asgi import ASGIApp, run_asgi
from campusgate.proxy.balancer import Balancer, TargetState
from campusgate.proxy.bodies import (
    BodyHooks,
    BodyRefused,
    RequestMeter,
    read_request_body,
    response_limit,
    response_overflowed,
    run_response_body,
    streams_at_once,
    warn_unbuffered,
)
from campusgate.proxy.context import HeaderList, RequestContext, RouteOptions
from campusgate.proxy.errors import (
    BadGateway,
    ConnectFailed,
    ConnectTimeout,
    GatewayTimeout,
    NoHealthyTarget,
    UpstreamError,
)
from campusgate.proxy.exchange import Exchange, Outcome
from campusgate.proxy.fastpath import FastForward, Finish
from campusgate.proxy.heads import (
    DROP_UP,
    Forwarding,
    forwarded_headers,
    response_headers,
    upstream_path,
)
from campusgate.proxy.http1 import ClientConnection
from campusgate.proxy.request import ClientDisconnected, Request
from campusgate.proxy.rewrites import UPSTREAM_METHOD, UPSTREAM_PATH
from campusgate.proxy.upstream import TargetPool, UpstreamConnection

# Forwarding, response_headers, ... are re-exported: they lived here first.
__all__ = ["AsgiBackend", "Backend", "Forwarding", "HttpBackend", "ResponseHook",
           "forwarded_headers", "response_headers", "upstream_path"]

log = logging.getLogger("campusgate.proxy")

IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
ResponseHook = Callable[[RequestContext, int, HeaderList], None]
#: What the upstream never gets from the client when the gateway sends its own
#: ``traceparent`` (``observe/tracing.py``).
DROP_UP_TRACED = DROP_UP | {b"traceparent"}
#: Which ``ctx.error`` a mid-response failure is (``observe.capture.ERROR_CLASSES``).
_CUT_ERRORS = {Outcome.TIMEOUT: "upstream_timeout", Outcome.CLIENT_GONE: "client_abort",
               Outcome.REFUSED: "client_error"}


class Backend(Protocol):
    async def forward(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                      route: RouteOptions, matched_path: str,
                      on_response: ResponseHook, hooks: BodyHooks | None = None) -> None: ...


@dataclass(eq=False)
class HttpBackend:
    service: Service
    balancer: Balancer
    pools: dict[str, TargetPool]
    forwarding: Forwarding
    host_header: bytes | None  # the service url's host, when it is a real host
    hashing: bool = False

    def request_head(self, req: Request, ctx: RequestContext, route: RouteOptions,
                     matched_path: str, target: TargetState,
                     payload: bytes | None = None) -> bytes:
        method = req.method
        if ctx.vars and (UPSTREAM_PATH in ctx.vars or UPSTREAM_METHOD in ctx.vars):
            path = ctx.vars.get(UPSTREAM_PATH) or upstream_path(
                self.service.path, req.path, route, matched_path, ctx.params)
            method = ctx.vars.get(UPSTREAM_METHOD, method)
        else:
            path = upstream_path(self.service.path, req.path, route, matched_path, ctx.params)
        query = ctx.query  # plugins may have changed it (a stripped api key...)
        target_bytes = (path + "?" + query if query else path).encode("latin-1")
        trace = ctx.trace
        drop = DROP_UP if trace is None else DROP_UP_TRACED
        for name, _ in req.headers:  # Connection may name more hop-by-hop headers
            if name == b"connection":
                tokens = wire.connection_tokens(req.headers) - drop
                if tokens:
                    drop = drop | tokens
                break
        removed = ctx.upstream_headers_remove
        if removed:  # a stripped credential, say: two lookups beat a new set per request
            headers = [(n, v) for n, v in req.headers if n not in drop and n not in removed]
        else:
            headers = [(n, v) for n, v in req.headers if n not in drop]
        if route.preserve_host and req.host:
            host = req.host
        else:
            host = self.host_header or target.address.encode()
        headers.append((b"host", host))
        if self.forwarding.trusted:
            headers.extend(forwarded_headers(req, ctx, self.forwarding))
        else:  # nobody's X-Forwarded-* is believed: the common case, inline
            headers += (
                (b"x-forwarded-for", req.conn.client_ip.encode("latin-1")),
                (b"x-forwarded-proto", b"https" if ctx.scheme == "https" else b"http"),
                (b"x-forwarded-host", req.host),
                (b"x-request-id", ctx.request_id.encode()),
            )
        if req.upgrade:
            upgrade = ctx.header(b"upgrade") or b"websocket"
            headers.append((b"connection", b"upgrade"))
            headers.append((b"upgrade", upgrade))
        elif payload is not None:  # read whole (and maybe changed) by body-phase plugins
            headers.append((b"content-length", b"%d" % len(payload)))
        elif req.chunked:
            headers.append((b"transfer-encoding", b"chunked"))
        elif req.content_length is not None:
            headers.append((b"content-length", b"%d" % req.content_length))
        if trace is not None:
            headers.append((b"traceparent", trace.traceparent()))
        headers.extend(ctx.upstream_headers_add)
        return wire.request_head(method, target_bytes, headers)

    def start_fast(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                   route: RouteOptions, matched_path: str, on_response: ResponseHook | None,
                   finish: Finish) -> FastForward | None:
        """Send ``req`` on an idle pooled connection, callbacks only; None to decline."""
        balancer = self.balancer
        now = conn.loop.time()
        hash_value = (balancer.hash_input(req.headers, ctx.client_ip,
                                          ctx.consumer.name if ctx.consumer else None)
                      if self.hashing else None)
        target = balancer.pick(now, hash_value)
        if target is None:
            return None
        upstream = self.pools[target.address].take_idle()
        if upstream is None:  # the task path connects, to the target picked here
            ctx.vars["fast.picked"] = target
            return None
        balancer.on_connect(target)
        ctx.upstream_target = target.address
        job = FastForward(self, conn, req, ctx, target, upstream, on_response, finish)
        job.start(self.request_head(req, ctx, route, matched_path, target))
        return job

    async def forward(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                      route: RouteOptions, matched_path: str, on_response: ResponseHook,
                      hooks: BodyHooks | None = None) -> None:
        payload: bytes | None = None
        meter: RequestMeter | None = None
        if hooks is not None:
            try:
                payload, meter = await read_request_body(req, ctx, hooks)
            except ClientDisconnected:
                return  # gone, or its body broke off: the connection answers req.fault
        svc = self.service
        balancer = self.balancer
        loop = conn.loop
        hash_value = (balancer.hash_input(req.headers, ctx.client_ip,
                                          ctx.consumer.name if ctx.consumer else None)
                      if self.hashing else None)
        tried: list[str] = []
        attempts = 0
        fast_tried = ctx.vars.get("fast.tried")
        if fast_tried is not None:  # the callback path tried once already
            tried.append(fast_tried)
            attempts = 1
        replayable = not req.has_body or payload is not None
        failure: UpstreamError | None = None  # why the last try failed
        picked: TargetState | None = ctx.vars.pop("fast.picked", None)
        while True:
            target = picked or balancer.pick(loop.time(), hash_value, tried)
            picked = None
            if target is None:
                # a failed try may have ejected the last target: its reason says more
                raise failure or NoHealthyTarget(
                    f"no healthy target in upstream {balancer.name!r}")
            ctx.upstream_target = target.address
            ctx.retries = attempts
            pool = self.pools[target.address]
            try:
                upstream = await pool.acquire(svc.timeouts.connect)
            except (OSError, TimeoutError) as exc:
                balancer.report_failure(target, loop.time(), "connect")
                tried.append(target.address)
                attempts += 1
                if isinstance(exc, TimeoutError):
                    failure = ConnectTimeout(f"connecting to {target.address} timed out")
                else:
                    failure = ConnectFailed(
                        f"cannot connect to {target.address}: {exc.strerror or exc}")
                if attempts <= svc.retries.count:
                    continue
                raise failure from None
            balancer.on_connect(target)
            try:
                may_retry = replayable and attempts < svc.retries.count
                retry_reason = await self._exchange(conn, req, ctx, route, matched_path, target,
                                                    upstream, on_response, may_retry, hooks,
                                                    payload, meter)
            finally:
                balancer.on_release(target)
            if retry_reason is None:
                return
            failure = BadGateway(f"upstream {target.address}: {retry_reason}")
            tried.append(target.address)
            attempts += 1

    async def _exchange(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                        route: RouteOptions, matched_path: str, target: TargetState,
                        upstream: UpstreamConnection, on_response: ResponseHook,
                        may_retry: bool, hooks: BodyHooks | None = None,
                        payload: bytes | None = None,
                        meter: RequestMeter | None = None) -> str | None:
        """One try. None when the client got its answer, else why to try again."""
        svc = self.service
        loop = conn.loop
        ex = Exchange(conn, req, upstream, svc.timeouts.read, svc.timeouts.write, payload, meter)
        ex.send(self.request_head(req, ctx, route, matched_path, target, payload))
        ctx.upstream_started = time.monotonic()
        ctx.upstream_ended = 0.0
        outcome = await ex.wait_head()
        if outcome is not Outcome.COMPLETE or ex.status == 0:
            ex.finish()
            upstream.abort()
            if outcome is Outcome.REFUSED and ex.refusal is not None:
                raise BodyRefused(ex.refusal)
            if outcome is Outcome.CLIENT_GONE:
                ctx.error = "client_abort"
                return None
            if outcome is Outcome.TIMEOUT:
                self.balancer.report_failure(target, loop.time(), "timeout")
                raise GatewayTimeout(f"upstream {target.address} did not answer in time")
            stale = upstream.reused and not ex.body_started
            if outcome is Outcome.LOST and (may_retry or stale):
                if not stale:
                    self.balancer.report_failure(target, loop.time(), "reset")
                return "the connection closed without an answer"
            self.balancer.report_failure(target, loop.time(), "reset")
            reason = ex.fault or "the upstream closed the connection without answering"
            raise BadGateway(f"upstream {target.address}: {reason}")
        status = ex.status
        if self.balancer.is_failure_status(status):
            self.balancer.report_failure(target, loop.time(), f"status {status}")
        else:
            self.balancer.report_success(target, loop.time())
        if (may_retry and status in svc.retries.on_statuses
                and req.method in IDEMPOTENT):
            ex.finish()
            upstream.abort()
            return f"answered {status}"
        if status == 101:
            if req.upgrade:
                await self._upgrade(conn, req, ctx, ex, on_response)
                return None
            ex.finish()
            upstream.abort()
            self.balancer.report_failure(target, loop.time(), "unasked 101")
            raise BadGateway(f"upstream {target.address} switched protocols unasked")
        headers, content_length = response_headers(ex.headers, ex.framed)
        ctx.status = status
        if hooks is not None and hooks.response_body:
            plugins = hooks.response_plugins(ctx, req.method, status, headers)
            if plugins and await self._buffered(conn, req, ctx, ex, target, status, headers,
                                                content_length, plugins, on_response):
                return None
        # Head, the body read so far and (when complete) the end go out in one write.
        conn.cork()
        try:
            on_response(ctx, status, headers)
            conn.start_response(req, status, headers, content_length)
            ex.pipe_body()
        except BaseException:
            conn.uncork()
            raise
        if not ex.finished:
            conn.uncork()
        outcome = await ex.wait_done()
        ctx.upstream_ended = ex.completed_at
        if outcome is Outcome.COMPLETE:
            conn.end_body()
            conn.uncork()
            if ex.keep_alive and ex.body_sent and not upstream.closed:
                self.pools[target.address].release(upstream)
            else:
                upstream.close()
        else:
            conn.uncork()
            upstream.abort()
            ctx.error = _CUT_ERRORS.get(outcome, "upstream_error")
            if outcome is not Outcome.CLIENT_GONE and outcome is not Outcome.REFUSED:
                self.balancer.report_failure(target, loop.time(), outcome.value)
                log.warning("upstream %s failed mid-response (%s): %s %s", target.address,
                            outcome.value, req.method.decode(), req.path)
            conn.abort_response()
        return None

    async def _buffered(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                        ex: Exchange, target: TargetState, status: int, headers: HeaderList,
                        content_length: int | None, plugins: list[Plugin],
                        on_response: ResponseHook) -> bool:
        """Gather the response body for ``plugins`` and answer with what they make of
        it.  False when it is too large: the caller streams it (what arrived is held)."""
        if streams_at_once(plugins, content_length):
            warn_unbuffered(ctx, plugins, content_length)
            return False
        limit = response_limit(plugins)
        outcome = await ex.collect(limit)
        if outcome is Outcome.OVERFLOW:
            response_overflowed(ctx, status, headers, ex.held(), plugins, content_length)
            return False
        upstream = ex.upstream
        if outcome is not Outcome.COMPLETE:  # nothing reached the client yet
            ex.finish()
            upstream.abort()
            if outcome is Outcome.CLIENT_GONE:
                ctx.error = "client_abort"
                return True
            if outcome is Outcome.REFUSED and ex.refusal is not None:
                raise BodyRefused(ex.refusal)
            self.balancer.report_failure(target, conn.loop.time(), outcome.value)
            if outcome is Outcome.TIMEOUT:
                raise GatewayTimeout(f"upstream {target.address} did not finish its "
                                     "response in time")
            raise BadGateway(f"upstream {target.address}: the response broke off "
                             f"({ex.fault or outcome.value})")
        ctx.upstream_ended = ex.completed_at
        body = run_response_body(ctx, status, headers, ex.take_body(), plugins)
        ex.finish()
        conn.cork()
        try:
            on_response(ctx, status, headers)
            conn.start_response(req, status, headers, len(body))
            conn.write_body(body)
            conn.end_body()
        finally:
            conn.uncork()
        if ex.keep_alive and ex.body_sent and not upstream.closed:
            self.pools[target.address].release(upstream)
        else:
            upstream.close()
        return True

    async def _upgrade(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                       ex: Exchange, on_response: ResponseHook) -> None:
        headers = [(n, v) for n, v in ex.headers if n not in (b"connection", b"upgrade")]
        upgrade = next((v for n, v in ex.headers if n == b"upgrade"), b"websocket")
        ctx.status = 101
        on_response(ctx, 101, headers)
        headers += [(b"connection", b"upgrade"), (b"upgrade", upgrade)]
        conn.response_started = True
        conn.write_raw(wire.response_head(101, headers))
        ex.finish()
        await ex.tunnel()


@dataclass(eq=False)
class AsgiBackend:
    """An in-process ASGI application (the built-in echo service, identity, ...)."""

    app: ASGIApp

    async def forward(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                      route: RouteOptions, matched_path: str, on_response: ResponseHook,
                      hooks: BodyHooks | None = None) -> None:
        root = matched_path if route.strip_path else ""
        if hooks is None:
            await run_asgi(self.app, conn, req, ctx, root_path=root, on_response=on_response)
            return
        try:
            payload, meter = await read_request_body(req, ctx, hooks)
        except ClientDisconnected:
            return
        await run_asgi(self.app, conn, req, ctx, root_path=root, on_response=on_response,
                       hooks=hooks, payload=payload, meter=meter)


async def sweep_pools_forever(get_pools: Callable[[], Sequence[TargetPool]],
                              every: float = 5.0) -> None:
    while True:
        await asyncio.sleep(every)
        for pool in get_pools():
            pool.sweep()

"""The proxy listener's dispatcher: route, run the plugin chain, forward, log.

It reads the current :class:`Snapshot` once per request, so a reload swaps the
snapshot for new requests while requests in flight finish on the old one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from campusgate.observe.capture import answer_error, proxy_error
from campusgate.observe.tracing import REPEATED, trace_from
from campusgate.plugins.base import WAIT, Plugin
from campusgate.proxy.backends import HttpBackend
from campusgate.proxy.bodies import BODY_HOOKS
from campusgate.proxy.context import LocalResponse, RequestContext
from campusgate.proxy.errors import (
    BadGateway,
    ClientError,
    MethodNotAllowed,
    NoRoute,
    ProxyError,
)
from campusgate.proxy.http1 import ClientConnection
from campusgate.proxy.request import Request
from campusgate.proxy.request_ids import is_valid_request_id, new_request_id
from campusgate.proxy.snapshot import CompiledRoute, Snapshot, finish_headers

if TYPE_CHECKING:
    from campusgate.proxy.fastpath import FastForward
    from campusgate.proxy.router import RouteMatch

    Prepared = tuple[Snapshot, RequestContext, RouteMatch[CompiledRoute] | None]

__all__ = ["Gateway"]

log = logging.getLogger("campusgate.proxy")

_monotonic = time.monotonic
#: The longest request target (and Host) a refused request's record keeps: a request
#: refused for its 64 KiB URL is recorded, not the URL.
REFUSED_TARGET_LIMIT = 2048


class _AccessWait:
    """The connection's view of a request whose access phase waits on a future by
    callbacks: the future has its own deadline (the Redis command timeout), so the
    connection's timer just looks again later."""

    def on_timeout(self, now: float) -> float | None:
        return 1.0


class Gateway:
    """``record``: called with each finished request's context (the access-record
    queue's ``put``; None when access records are off).  ``propagate``: give each
    request a W3C trace (``ctx.trace``) that upstreams receive as ``traceparent``."""

    def __init__(self, current: Callable[[], Snapshot], scheme: str = "http", *,
                 record: Callable[[RequestContext], None] | None = None,
                 propagate: bool = True) -> None:
        self.current = current
        self.scheme = scheme
        self.record = record
        self.propagate = propagate
        self._fast_finished_cb = self._fast_finished

    def _prepare(self, conn: ClientConnection, req: Request) -> Prepared:
        """Request id, context and route match (None when no route matches)."""
        prepared = req.prepared
        if isinstance(prepared, tuple):
            return prepared
        incoming = traceparent = None
        for name, value in req.headers:  # one scan for both (the first x-request-id wins)
            if name == b"x-request-id":
                if incoming is None:
                    incoming = value
            elif name == b"traceparent":
                traceparent = value if traceparent is None else REPEATED
        made: str | None = None
        if incoming is not None and is_valid_request_id(incoming):
            request_id = incoming.decode()
        else:
            request_id = made = new_request_id()
        ctx = RequestContext(
            req.method.decode("latin-1"), req.path, req.query, req.headers, conn.client_ip,
            self.scheme, req.host.decode("latin-1"), request_id,
        )
        if self.record is not None:  # the count at the start; _finish takes the difference
            ctx.bytes_out = conn.bytes_out
        if self.propagate:
            ctx.trace = trace_from(traceparent, made)
        snap = self.current()
        match = snap.router.match(ctx.method, ctx.host, ctx.path, req.headers, ctx.query)
        if match is not None:
            route = match.payload
            ctx.route = route
            ctx.service = route.service
            if match.params:  # the match may be shared (the router remembers it): copy
                ctx.params = dict(match.params)
        result = (snap, ctx, match)
        req.prepared = result
        return result

    # ---------------------------------------------------------------- the callback path
    def try_fast(self, conn: ClientConnection, req: Request) -> bool:
        if req.has_body:
            return False
        _, ctx, match = self._prepare(conn, req)
        if match is None:
            return False
        route: CompiledRoute = match.payload
        if not isinstance(route.service.backend, HttpBackend):
            return False
        if route.access:
            if route.access_waits:
                return False
            return self._access_fast(conn, req, ctx, match, route.access, 0)
        return self._forward_fast(conn, req, ctx, match)

    def _access_fast(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                     match: RouteMatch[CompiledRoute], chain: tuple[Plugin, ...],
                     i: int) -> bool:
        """Run the access chain from ``chain[i]`` without awaiting; True when the
        request is in the callback path's hands (forwarded, or waiting on a future)."""
        while i < len(chain):
            plugin = chain[i]
            answer = plugin.access_now(ctx)
            if answer is not None:
                if answer is WAIT:
                    started = plugin.access_start(ctx)
                    if started is not None:  # e.g. a Redis command: resume on its reply
                        conn.fast = _AccessWait()
                        started.add_done_callback(functools.partial(
                            self._access_resumed, conn, req, ctx, match, chain, i))
                        return True
                # the task path sends the answer, or resumes at the plugin that waits
                ctx.vars["access.resume"] = (chain, i, answer)
                return False
            i += 1
            plan = ctx.plan
            if plan is not None and chain is not plan.access:
                chain = plan.access
                i = 0
        ctx.vars["access.resume"] = None  # all ran: the task path must not run them
        return self._forward_fast(conn, req, ctx, match)

    def _access_resumed(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                        match: RouteMatch[CompiledRoute], chain: tuple[Plugin, ...], i: int,
                        done: asyncio.Future[Any]) -> None:
        """The future a plugin waited on is done: go on by callbacks, or hand over."""
        conn.fast = None
        if conn.closed:
            ctx.error = "client_abort"
            self._finish(conn, req, ctx, ())
            conn.fast_done(req)
            return
        try:
            answer = chain[i].access_finish(ctx, done)
            if answer is None:
                if self._access_fast(conn, req, ctx, match, chain, i + 1):
                    return
            else:
                ctx.vars["access.resume"] = (chain, i, answer)
        except Exception:
            log.exception("plugin %s failed resuming the access phase", chain[i].name)
            ctx.vars["access.resume"] = (chain, i, WAIT)  # the task path runs it again
        conn.hand_back(req)

    def _forward_fast(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                      match: RouteMatch[CompiledRoute]) -> bool:
        route = match.payload
        backend = route.service.backend
        assert isinstance(backend, HttpBackend)
        hook = ctx.plan or route
        job = backend.start_fast(conn, req, ctx, route.config, match.matched_path,
                                 hook.on_response if hook.response else None,
                                 self._fast_finished_cb)
        if job is None:
            return False
        conn.fast = job
        return True

    def _fast_finished(self, job: FastForward, error: ProxyError | None, handback: bool) -> None:
        conn, req, ctx = job.client, job.req, job.ctx
        if handback:
            conn.hand_back(req)
            return
        route = ctx.route
        assert route is not None
        if error is None and not conn.response_started and not conn.closed:
            # never leave a client waiting, whatever ended the exchange
            error = BadGateway("the upstream exchange ended without an answer")
        if error is not None and not conn.response_started and not conn.closed:
            log.info("%s %s -> %d %s", ctx.method, ctx.path, error.status, error.message)
            ctx.error = proxy_error(error)
            self._local(conn, req, ctx, error.response(ctx.request_id), route)
        self._finish(conn, req, ctx, (ctx.plan or route).log)
        conn.fast_done(req)

    # ---------------------------------------------------------------- the task path
    async def handle(self, conn: ClientConnection, req: Request) -> None:
        snap, ctx, match = self._prepare(conn, req)
        if match is None:
            allowed = snap.router.allowed_methods(ctx.host, ctx.path, req.headers, ctx.query)
            error: ProxyError
            if allowed:
                error = MethodNotAllowed(
                    f"{ctx.method} is not allowed here",
                    [(b"allow", ", ".join(sorted(allowed)).encode())])
            else:
                error = NoRoute(f"no route matches {ctx.method} {ctx.path}")
            ctx.error = proxy_error(error)
            self._local(conn, req, ctx, error.response(ctx.request_id), None,
                        snap.global_response)
            self._finish(conn, req, ctx, ())
            return
        route: CompiledRoute = match.payload
        try:
            answer = await self._access(route, ctx)
            if answer is not None:
                ctx.error = answer_error(answer.status)
                self._local(conn, req, ctx, answer, route)
                return
            # body-phase plugins' hooks, if the chain has any (its BodyStep put them there)
            await route.service.backend.forward(conn, req, ctx, route.config, match.matched_path,
                                                (ctx.plan or route).on_response,
                                                ctx.vars.get(BODY_HOOKS))
        except ProxyError as exc:
            ctx.error = proxy_error(exc)
            if conn.response_started:
                conn.abort_response()
            else:
                log.info("%s %s -> %d %s", ctx.method, ctx.path, exc.status, exc.message)
                self._local(conn, req, ctx, exc.response(ctx.request_id), route)
        except Exception:
            ctx.error = "internal"
            if not conn.response_started:
                ctx.status = 500  # the connection answers it
            raise
        finally:
            self._finish(conn, req, ctx, (ctx.plan or route).log)

    def _finish(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                plugins: tuple[Plugin, ...]) -> None:
        """The log phase: stamp the end, run the log plugins, queue the record
        (without records, only the plugins: the stamps are the record's)."""
        record = self.record
        if record is None:
            if plugins:
                self._log(plugins, ctx)
            return
        ctx.ended = _monotonic()
        ctx.bytes_in = req.received
        ctx.bytes_out = conn.bytes_out - ctx.bytes_out
        if req.disconnected and ctx.error is None:
            ctx.error = "client_abort"
        if plugins:
            self._log(plugins, ctx)
        record(ctx)

    def refused(self, conn: ClientConnection, req: Request | None, error: ProxyError,
                request_id: str, sent: int) -> None:
        """The record of a request the connection refused before routing (not valid
        HTTP, over a limit, too slow to arrive: ``bad_request``; a connection over
        ``max_connections``, not read: ``overloaded``), from what was read of it:
        ``req`` when its head was whole, else the connection's :meth:`partial_head`."""
        record = self.record
        if record is None:
            return
        if req is not None:
            method, target, headers, host, received = (
                req.method, req.target, req.headers, req.host, req.received)
        else:
            (method, target, headers, host), received = conn.partial_head(), 0
        path, _, query = target[:REFUSED_TARGET_LIMIT].partition(b"?")
        ctx = RequestContext(method.decode("latin-1"), path.decode("latin-1"),
                             query.decode("latin-1"), headers, conn.client_ip, self.scheme,
                             host[:REFUSED_TARGET_LIMIT].decode("latin-1"), request_id)
        ctx.status = error.status
        ctx.error = "bad_request" if isinstance(error, ClientError) else proxy_error(error)
        ctx.ended = _monotonic()
        ctx.bytes_in = received
        ctx.bytes_out = sent
        record(ctx)

    @staticmethod
    async def _access(route: CompiledRoute, ctx: RequestContext) -> LocalResponse | None:
        """The access phase on the task path, resuming where the callback path left."""
        chain: tuple[Plugin, ...] = route.access
        i = 0
        if "access.resume" in ctx.vars:
            resume = ctx.vars.pop("access.resume")
            if resume is None:
                return None  # the callback path ran every plugin
            chain, i, answer = resume
            if isinstance(answer, LocalResponse):
                return answer
        while i < len(chain):
            answer = await chain[i].access(ctx)
            if answer is not None:
                return answer
            i += 1
            plan = ctx.plan
            if plan is not None and chain is not plan.access:
                chain = plan.access
                i = 0
        return None

    @staticmethod
    def _log(plugins: tuple[Plugin, ...], ctx: RequestContext) -> None:
        for plugin in plugins:
            try:
                plugin.log(ctx)
            except Exception:
                log.exception("plugin %s failed in the log phase", plugin.name)

    @staticmethod
    def _local(conn: ClientConnection, req: Request, ctx: RequestContext,
               resp: LocalResponse, route: CompiledRoute | None,
               plugins: tuple[Plugin, ...] = ()) -> None:
        headers = list(resp.headers)
        ctx.status = resp.status
        if route is not None:
            (ctx.plan or route).on_response(ctx, resp.status, headers)
        else:
            for plugin in plugins:
                plugin.response(ctx, resp.status, headers)
            finish_headers(ctx, headers)
        resp.headers = headers
        conn.send_local(req, resp)

"""Where a matched request goes: an HTTP upstream (balanced, pooled, retried) or an
in-process ASGI app.

Both backends take the client connection, the request and its context, and answer
the client themselves; errors they cannot answer raise :class:`ProxyError`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from campusgate.config.model import Service
from campusgate.proxy import wire
from campusgate.proxy.asgi import ASGIApp, run_asgi
from campusgate.proxy.balancer import Balancer, TargetState
from campusgate.proxy.context import HeaderList, RequestContext, RouteOptions
from campusgate.proxy.errors import BadGateway, GatewayTimeout, NoHealthyTarget, UpstreamError
from campusgate.proxy.exchange import Exchange, Outcome
from campusgate.proxy.fastpath import FastForward, Finish
from campusgate.proxy.http1 import ClientConnection
from campusgate.proxy.request import Request
from campusgate.proxy.upstream import TargetPool

__all__ = ["AsgiBackend", "Backend", "Forwarding", "HttpBackend", "ResponseHook"]

log = logging.getLogger("campusgate.proxy")

IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
_DROP_UP = wire.HOP_BY_HOP | {
    b"host", b"expect", b"content-length", b"x-forwarded-for", b"x-forwarded-proto",
    b"x-forwarded-host", b"x-request-id",
}
# The gateway sets X-Request-Id on every response itself.
_DROP_DOWN = wire.HOP_BY_HOP | {b"content-length", b"x-request-id"}

ResponseHook = Callable[[RequestContext, int, HeaderList], None]


@dataclass(frozen=True)
class Forwarding:
    """Trusted-proxy setting: whose X-Forwarded-* headers are believed."""

    trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()

    def trusts(self, ip: str) -> bool:
        if not self.trusted or not ip:
            return False
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.trusted)


class Backend(Protocol):
    async def forward(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                      route: RouteOptions, matched_path: str,
                      on_response: ResponseHook) -> None: ...


def upstream_path(service_path: str, req_path: str, route: RouteOptions, matched_path: str,
                  params: dict[str, str]) -> str:
    """The path sent upstream: service path + request path, stripped or rewritten."""
    rest = req_path
    if route.rewrite is not None:
        rewritten = route.rewrite
        for key, value in params.items():
            rewritten = rewritten.replace("{" + key + "}", value)
        rest = rewritten + req_path[len(matched_path):]
    elif route.strip_path and matched_path:
        rest = req_path[len(matched_path):]
    if rest and not rest.startswith("/"):
        rest = "/" + rest
    path = service_path + rest
    return path or "/"


def forwarded_headers(req: Request, ctx: RequestContext, fwd: Forwarding) -> HeaderList:
    """X-Forwarded-* for the upstream: the client's own are believed only from a
    trusted proxy (then X-Forwarded-For is appended to, in order), else replaced."""
    client_ip = ctx.client_ip.encode("latin-1")
    xff = client_ip
    proto = ctx.scheme.encode()
    host = req.host
    if fwd.trusts(ctx.client_ip):
        chain: list[bytes] = []
        for name, value in req.headers:
            if name == b"x-forwarded-for":
                chain.append(value.strip())
            elif name == b"x-forwarded-proto":
                proto = value
            elif name == b"x-forwarded-host":
                host = value
        if chain:
            chain.append(client_ip)
            xff = b", ".join(chain)
    return [
        (b"x-forwarded-for", xff),
        (b"x-forwarded-proto", proto),
        (b"x-forwarded-host", host),
        (b"x-request-id", ctx.request_id.encode()),
    ]


def response_headers(upstream: HeaderList, framed: bool) -> tuple[HeaderList, int | None]:
    """The upstream's response headers for the client, and its Content-Length if any.

    Hop-by-hop headers (and those named in Connection) are dropped; framing is the
    client connection's to choose, so Content-Length comes back separately.
    """
    content_length: int | None = None
    headers: HeaderList = []
    tokens = wire.connection_tokens(upstream)
    drop = _DROP_DOWN | tokens if tokens else _DROP_DOWN
    chunked = False
    for name, value in upstream:
        if name == b"content-length":
            if framed and value.strip().isdigit():
                content_length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
        elif name not in drop:
            headers.append((name, value))
    return headers, None if chunked else content_length


@dataclass(eq=False)
class HttpBackend:
    service: Service
    balancer: Balancer
    pools: dict[str, TargetPool]
    forwarding: Forwarding
    host_header: bytes | None  # the service url's host, when it is a real host
    hashing: bool = False

    def request_head(self, req: Request, ctx: RequestContext, route: RouteOptions,
                     matched_path: str, target: TargetState) -> bytes:
        path = upstream_path(self.service.path, req.path, route, matched_path, ctx.params)
        target_bytes = (path + "?" + req.query if req.query else path).encode("latin-1")
        drop = _DROP_UP
        for name, _ in req.headers:  # Connection may name more hop-by-hop headers
            if name == b"connection":
                tokens = wire.connection_tokens(req.headers) - _DROP_UP
                if tokens:
                    drop = drop | tokens
                break
        if ctx.upstream_headers_remove:
            drop = drop | ctx.upstream_headers_remove
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
        elif req.chunked:
            headers.append((b"transfer-encoding", b"chunked"))
        elif req.content_length is not None:
            headers.append((b"content-length", b"%d" % req.content_length))
        headers.extend(ctx.upstream_headers_add)
        return wire.request_head(req.method, target_bytes, headers)

    def start_fast(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                   route: RouteOptions, matched_path: str, on_response: ResponseHook | None,
                   finish: Finish) -> FastForward | None:
        """Send ``req`` on an idle pooled connection, callbacks only; None to decline."""
        balancer = self.balancer
        now = conn.loop.time()
        hash_value = (balancer.hash_input(req.headers, ctx.client_ip, ctx.consumer)
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
                      route: RouteOptions, matched_path: str, on_response: ResponseHook) -> None:
        svc = self.service
        balancer = self.balancer
        loop = conn.loop
        hash_value = (balancer.hash_input(req.headers, ctx.client_ip, ctx.consumer)
                      if self.hashing else None)
        tried: list[str] = []
        attempts = 0
        fast_tried = ctx.vars.get("fast.tried")
        if fast_tried is not None:  # the callback path tried once already
            tried.append(fast_tried)
            attempts = 1
        replayable = not req.has_body
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
            pool = self.pools[target.address]
            try:
                upstream = await pool.acquire(svc.timeouts.connect)
            except (OSError, TimeoutError) as exc:
                balancer.report_failure(target, loop.time(), "connect")
                tried.append(target.address)
                attempts += 1
                if isinstance(exc, TimeoutError):
                    failure = GatewayTimeout(f"connecting to {target.address} timed out")
                else:
                    failure = BadGateway(
                        f"cannot connect to {target.address}: {exc.strerror or exc}")
                if attempts <= svc.retries.count:
                    continue
                raise failure from None
            balancer.on_connect(target)
            try:
                may_retry = replayable and attempts < svc.retries.count
                retry_reason = await self._exchange(conn, req, ctx, route, matched_path, target,
                                                    upstream, on_response, may_retry)
            finally:
                balancer.on_release(target)
            if retry_reason is None:
                return
            failure = BadGateway(f"upstream {target.address}: {retry_reason}")
            tried.append(target.address)
            attempts += 1

    async def _exchange(self, conn: ClientConnection, req: Request, ctx: RequestContext,
                        route: RouteOptions, matched_path: str, target: TargetState,
                        upstream: object, on_response: ResponseHook, may_retry: bool) -> str | None:
        """One try. None when the client got its answer, else why to try again."""
        from campusgate.proxy.upstream import UpstreamConnection

        assert isinstance(upstream, UpstreamConnection)
        svc = self.service
        loop = conn.loop
        ex = Exchange(conn, req, upstream, svc.timeouts.read, svc.timeouts.write)
        ex.send(self.request_head(req, ctx, route, matched_path, target))
        outcome = await ex.wait_head()
        if outcome is not Outcome.COMPLETE or ex.status == 0:
            ex.finish()
            upstream.abort()
            if outcome is Outcome.CLIENT_GONE:
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
            if outcome is not Outcome.CLIENT_GONE:
                self.balancer.report_failure(target, loop.time(), outcome.value)
                log.warning("upstream %s failed mid-response (%s): %s %s", target.address,
                            outcome.value, req.method.decode(), req.path)
            conn.abort_response()
        return None

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
                      route: RouteOptions, matched_path: str, on_response: ResponseHook) -> None:
        root = matched_path if route.strip_path else ""
        await run_asgi(self.app, conn, req, ctx, root_path=root, on_response=on_response)


async def sweep_pools_forever(get_pools: Callable[[], Sequence[TargetPool]],
                              every: float = 5.0) -> None:
    while True:
        await asyncio.sleep(every)
        for pool in get_pools():
            pool.sweep()

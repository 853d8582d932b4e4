"""The proxy listener's dispatcher: route, run the plugin chain, forward, log.

It reads the current :class:`Snapshot` once per request, so a reload swaps the
snapshot for new requests while requests in flight finish on the old one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext
from campusgate.proxy.errors import MethodNotAllowed, NoRoute, ProxyError
from campusgate.proxy.http1 import ClientConnection
from campusgate.proxy.request import Request
from campusgate.proxy.request_ids import is_valid_request_id, new_request_id
from campusgate.proxy.snapshot import CompiledRoute, Snapshot

__all__ = ["Gateway"]

log = logging.getLogger("campusgate.proxy")


class Gateway:
    def __init__(self, current: Callable[[], Snapshot], scheme: str = "http") -> None:
        self.current = current
        self.scheme = scheme

    async def handle(self, conn: ClientConnection, req: Request) -> None:
        snap = self.current()
        incoming = None
        for name, value in req.headers:
            if name == b"x-request-id":
                incoming = value
                break
        request_id = (incoming.decode() if incoming is not None and is_valid_request_id(incoming)
                      else new_request_id())
        ctx = RequestContext(
            req.method.decode("latin-1"), req.path, req.query, req.headers, conn.client_ip,
            self.scheme, req.host.decode("latin-1"), request_id,
        )
        match = snap.router.match(ctx.method, ctx.host, ctx.path, req.headers, ctx.query)
        if match is None:
            allowed = snap.router.allowed_methods(ctx.host, ctx.path, req.headers, ctx.query)
            error: ProxyError
            if allowed:
                error = MethodNotAllowed(
                    f"{ctx.method} is not allowed here",
                    [(b"allow", ", ".join(sorted(allowed)).encode())])
            else:
                error = NoRoute(f"no route matches {ctx.method} {ctx.path}")
            self._local(conn, req, ctx, error.response(request_id), snap.global_response)
            return
        route: CompiledRoute = match.payload
        ctx.route = route
        ctx.service = route.service
        ctx.params = match.params
        try:
            for plugin in route.access:
                answer = await plugin.access(ctx)
                if answer is not None:
                    self._local(conn, req, ctx, answer, route.response)
                    return

            def on_response(c: RequestContext, status: int, headers: HeaderList) -> None:
                for plugin in route.response:
                    plugin.response(c, status, headers)
                self._finish_headers(c, headers)

            await route.service.backend.forward(conn, req, ctx, route.config, match.matched_path,
                                                on_response)
        except ProxyError as exc:
            if conn.response_started:
                conn.abort_response()
            else:
                log.info("%s %s -> %d %s", ctx.method, ctx.path, exc.status, exc.message)
                self._local(conn, req, ctx, exc.response(ctx.request_id), route.response)
        finally:
            for plugin in route.log:
                try:
                    plugin.log(ctx)
                except Exception:
                    log.exception("plugin %s failed in the log phase", plugin.name)

    def _local(self, conn: ClientConnection, req: Request, ctx: RequestContext,
               resp: LocalResponse, response_plugins: tuple[object, ...]) -> None:
        headers = list(resp.headers)
        ctx.status = resp.status
        for plugin in response_plugins:
            plugin.response(ctx, resp.status, headers)  # type: ignore[attr-defined]
        self._finish_headers(ctx, headers)
        resp.headers = headers
        conn.send_local(req, resp)

    @staticmethod
    def _finish_headers(ctx: RequestContext, headers: HeaderList) -> None:
        if any(name == b"x-request-id" for name, _ in headers):
            headers[:] = [h for h in headers if h[0] != b"x-request-id"]
        if not ctx.vars.get("request_id.hide"):
            headers.append((b"x-request-id", ctx.request_id.encode()))
        if ctx.response_headers_add:
            headers.extend(ctx.response_headers_add)



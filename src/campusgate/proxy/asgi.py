"""A small ASGI bridge: serve an in-process ASGI app from the gateway's own server.

The admin API, the built-in echo service and (later) the identity endpoints run
through here, so one process serves every listener and the gateway's plugins apply
to them too.  HTTP only (the apps served here use no WebSocket).

ASGI 3.0, HTTP spec 2.4: ``send`` after the client went away raises
:class:`~campusgate.proxy.request.ClientDisconnected` (an ``OSError``), and
``receive`` answers ``http.disconnect`` once the client is gone or the response is
complete.  An app that fails before its response starts gets a 500 JSON error; one
that fails after cuts the connection, so the client sees an incomplete response.

Body-phase plugins (``proxy/bodies.py``) work here as on HTTP upstreams: the app
receives the buffered request body, a refused upload looks to the app like a client
disconnect (and the client gets the plugin's answer), and the response body can be
gathered before its head is written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

from campusgate.plugins.base import Plugin
from campusgate.proxy import wire
from campusgate.proxy.bodies import (
    BodyHooks,
    BodyRefused,
    RequestMeter,
    response_limit,
    response_overflowed,
    run_response_body,
    streams_at_once,
    warn_unbuffered,
)
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext
from campusgate.proxy.errors import ProxyError
from campusgate.proxy.http1 import ClientConnection
from campusgate.proxy.request import ClientDisconnected, Request
from campusgate.proxy.rewrites import UPSTREAM_PATH

__all__ = ["ASGIApp", "run_asgi"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ResponseHook = Callable[[RequestContext, int, HeaderList], None]

log = logging.getLogger("campusgate.proxy")


def _noop(ctx: RequestContext, status: int, headers: HeaderList) -> None:
    return None


async def run_asgi(
    app: ASGIApp,
    conn: ClientConnection,
    req: Request,
    ctx: RequestContext,
    root_path: str = "",
    on_response: ResponseHook = _noop,
    hooks: BodyHooks | None = None,
    payload: bytes | None = None,
    meter: RequestMeter | None = None,
) -> None:
    """Serve ``req`` with ``app``.  On a route with body-phase plugins: ``payload`` is
    the request body already read (and changed) by them, ``meter`` counts a streamed
    one, and ``hooks`` may gather the response body (``proxy/bodies.py``)."""
    sock = conn.transport.get_extra_info("sockname") if conn.transport else None
    server = (sock[0], sock[1]) if isinstance(sock, tuple) else None
    # The app gets what an upstream would: plugins' removals and additions applied
    # (credentials stripped, consumer headers added), and the request id.
    drop = ctx.upstream_headers_remove
    headers = [(n, v) for n, v in req.headers if n != b"x-request-id" and n not in drop]
    headers.append((b"x-request-id", ctx.request_id.encode()))
    if ctx.trace is not None:  # the app is the gateway span's child, as an upstream is
        headers = [(n, v) for n, v in headers if n != b"traceparent"]
        headers.append((b"traceparent", ctx.trace.traceparent()))
    for name, value in ctx.upstream_headers_add:
        name = name.lower()
        if name != b"x-request-id":
            headers.append((name, value))
    if payload is not None:  # the body plugins made: frame it as the app will get it
        headers = [(n, v) for n, v in headers
                   if n != b"content-length" and n != b"transfer-encoding"]
        headers.append((b"content-length", b"%d" % len(payload)))
    path = req.path
    rewritten = ctx.vars.get(UPSTREAM_PATH) if ctx.vars else None
    if rewritten is not None:  # a plugin chose the whole path
        path, root_path = rewritten, ""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": req.version.decode(),
        "method": ctx.method,
        "scheme": ctx.scheme,
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "query_string": ctx.query.encode("latin-1"),
        "root_path": root_path,
        "headers": headers,
        "client": (conn.client_ip, conn.client_port),
        "server": server,
        "state": {"request_id": ctx.request_id, "consumer": ctx.consumer,
                  "credential": ctx.credential},
    }
    finished = asyncio.Event()  # the response is complete, or the client is gone
    req.on_disconnect = finished.set
    refusal: LocalResponse | None = None  # the meter stopped the request body
    started = done = False  # the response head / whole response went out
    delivered_end = False
    status = 0
    out: HeaderList = []
    gathering: list[bytes] | None = None  # the response body, for body-phase plugins
    gathered = 0
    plugins: list[Plugin] = []

    async def receive() -> Message:
        nonlocal delivered_end, payload, refusal
        if finished.is_set() or req.disconnected or refusal is not None:
            return {"type": "http.disconnect"}
        if payload is not None:
            body, payload, delivered_end = payload, None, True
            return {"type": "http.request", "body": body, "more_body": False}
        if req.at_end:
            if not delivered_end:
                delivered_end = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}
        try:
            data = await req.read_chunk()
        except ClientDisconnected:
            return {"type": "http.disconnect"}
        if meter is not None:
            refusal = meter.add(data)
            if refusal is not None:
                return {"type": "http.disconnect"}
        delivered_end = req.at_end
        return {"type": "http.request", "body": data, "more_body": not delivered_end}

    def start(content_length: int | None) -> None:
        nonlocal started
        started = True
        on_response(ctx, status, out)
        conn.start_response(req, status, out, content_length)

    def end() -> None:
        nonlocal done
        conn.end_body()
        done = True
        finished.set()

    async def send(message: Message) -> None:
        nonlocal status, out, gathering, gathered, plugins
        if conn.closed or req.disconnected:
            raise ClientDisconnected("the client went away")
        kind = message["type"]
        if kind == "http.response.start":
            status = int(message["status"])
            out = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", [])]
            return
        if kind != "http.response.body" or finished.is_set():
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if not started and gathering is None:
            content_length = _client_headers(out, ctx)
            if content_length is None and not more:
                content_length = len(body)
            ctx.status = status
            plugins = (hooks.response_plugins(ctx, req.method, status, out)
                       if hooks is not None else [])
            if plugins and streams_at_once(plugins, content_length):
                warn_unbuffered(ctx, plugins, content_length)
                plugins = []
            if plugins:
                gathering = []
            else:
                start(content_length)
        if gathering is not None:
            gathering.append(body)
            gathered += len(body)
            if not more:
                data = run_response_body(ctx, status, out, b"".join(gathering), plugins)
                gathering = None
                start(len(data))
                conn.write_body(data)
                end()
            elif gathered > response_limit(plugins):
                held, gathering = gathering, None
                response_overflowed(ctx, status, out, b"".join(held), plugins,
                                    content_length)
                start(None)
                for data in held:
                    conn.write_body(data)
                await conn.drain()
            return
        conn.write_body(body)
        if not more:
            end()
        else:
            await conn.drain()

    try:
        await app(scope, receive, send)
    except ClientDisconnected:
        return
    except Exception:
        if conn.closed or req.disconnected:
            return
        if not started:
            if refusal is not None:  # the app saw the disconnect we made up, and gave up
                raise BodyRefused(refusal) from None
            log.exception("ASGI app failed before its response: %s %s", scope["method"],
                          scope["path"])
            raise ProxyError("the application failed to handle the request") from None
        if done:  # it answered (say, Starlette's own 500), then raised
            log.exception("ASGI app failed after its response: %s %s", scope["method"],
                          scope["path"])
            return
        log.exception("ASGI app failed during its response: %s %s", scope["method"],
                      scope["path"])
        conn.abort_response()
        return
    finally:
        finished.set()
        req.on_disconnect = None
    if not started and not (conn.closed or req.disconnected):
        if refusal is not None:
            raise BodyRefused(refusal)
        raise ProxyError("the application returned without a response")
    if started and not done:
        conn.abort_response()  # the app returned mid-body: the client must see a cut


def _client_headers(headers: HeaderList, ctx: RequestContext) -> int | None:
    """Drop hop-by-hop and framing headers from an app's response head (in place); add
    X-Request-Id if missing.  The app's Content-Length, if it gave one."""
    content_length: int | None = None
    kept: HeaderList = []
    for name, value in headers:
        if name == b"content-length":
            content_length = int(value) if value.strip().isdigit() else None
        elif name not in wire.HOP_BY_HOP:
            kept.append((name, value))
    if not any(n == b"x-request-id" for n, _ in kept):
        kept.append((b"x-request-id", ctx.request_id.encode()))
    headers[:] = kept
    return content_length

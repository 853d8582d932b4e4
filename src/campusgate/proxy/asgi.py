"""A small ASGI bridge: serve an in-process ASGI app from the gateway's own server.

The admin API, the built-in echo service and (later) the identity endpoints run
through here, so one process serves every listener and the gateway's plugins apply
to them too.  HTTP only (the apps served here use no WebSocket).

ASGI 3.0, HTTP spec 2.4: ``send`` after the client went away raises
:class:`~campusgate.proxy.request.ClientDisconnected` (an ``OSError``), and
``receive`` answers ``http.disconnect`` once the client is gone or the response is
complete.  An app that fails before its response starts gets a 500 JSON error; one
that fails after cuts the connection, so the client sees an incomplete response.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

from campusgate.proxy import wire
from campusgate.proxy.context import HeaderList, RequestContext
from campusgate.proxy.errors import ProxyError
from campusgate.proxy.http1 import ClientConnection
from campusgate.proxy.request import ClientDisconnected, Request

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
) -> None:
    sock = conn.transport.get_extra_info("sockname") if conn.transport else None
    server = (sock[0], sock[1]) if isinstance(sock, tuple) else None
    headers = [(n, v) for n, v in req.headers if n != b"x-request-id"]
    headers.append((b"x-request-id", ctx.request_id.encode()))
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": req.version.decode(),
        "method": req.method.decode(),
        "scheme": ctx.scheme,
        "path": unquote(req.path),
        "raw_path": req.path.encode("latin-1"),
        "query_string": req.query.encode("latin-1"),
        "root_path": root_path,
        "headers": headers,
        "client": (conn.client_ip, conn.client_port),
        "server": server,
        "state": {"request_id": ctx.request_id, "consumer": ctx.consumer},
    }
    finished = asyncio.Event()  # the response is complete, or the client is gone
    req.on_disconnect = finished.set
    state = {"status": 0, "headers": [], "started": False, "done": False}
    delivered_end = False

    async def receive() -> Message:
        nonlocal delivered_end
        if finished.is_set() or req.disconnected:
            return {"type": "http.disconnect"}
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
        delivered_end = req.at_end
        return {"type": "http.request", "body": data, "more_body": not delivered_end}

    async def send(message: Message) -> None:
        if conn.closed or req.disconnected:
            raise ClientDisconnected("the client went away")
        kind = message["type"]
        if kind == "http.response.start":
            state["status"] = int(message["status"])
            state["headers"] = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", [])]
            return
        if kind != "http.response.body" or finished.is_set():
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        if not state["started"]:
            state["started"] = True
            status = int(state["status"])  # type: ignore[call-overload]
            content_length: int | None = None
            out: HeaderList = []
            for name, value in state["headers"]:  # type: ignore[attr-defined]
                if name == b"content-length":
                    content_length = int(value) if value.strip().isdigit() else None
                elif name not in wire.HOP_BY_HOP:
                    out.append((name, value))
            if content_length is None and not more:
                content_length = len(body)
            if not any(n == b"x-request-id" for n, _ in out):
                out.append((b"x-request-id", ctx.request_id.encode()))
            ctx.status = status
            on_response(ctx, status, out)
            conn.start_response(req, status, out, content_length)
        conn.write_body(body)
        if not more:
            conn.end_body()
            state["done"] = True
            finished.set()
        else:
            await conn.drain()

    try:
        await app(scope, receive, send)
    except ClientDisconnected:
        return
    except Exception:
        if conn.closed or req.disconnected:
            return
        if not state["started"]:
            log.exception("ASGI app failed before its response: %s %s", scope["method"],
                          scope["path"])
            raise ProxyError("the application failed to handle the request") from None
        if state["done"]:  # it answered (say, Starlette's own 500), then raised
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
    if not state["started"] and not (conn.closed or req.disconnected):
        raise ProxyError("the application returned without a response")
    if state["started"] and not state["done"]:
        conn.abort_response()  # the app returned mid-body: the client must see a cut

"""The built-in echo service (``builtin://echo``): answers with what it received.

Used by the demo config, the tutorial and the tests.  ``GET .../stream?n=5`` answers
with five Server-Sent Events, one every ``interval`` seconds (default 0.1).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

from campusgate.proxy.asgi import Message, Receive, Scope, Send

__all__ = ["echo_app"]

MAX_ECHO_BODY = 1024 * 1024


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    query = parse_qs(scope["query_string"].decode("latin-1"))
    if scope["path"].endswith("/stream"):
        await _stream(query, send)
        return
    body = bytearray()
    truncated = False
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            return
        chunk = message.get("body", b"")
        if len(body) < MAX_ECHO_BODY:
            body += chunk[: MAX_ECHO_BODY - len(body)]
        truncated = truncated or (len(body) >= MAX_ECHO_BODY and bool(chunk))
        if not message.get("more_body"):
            break
    payload: dict[str, Any] = {
        "method": scope["method"],
        "path": scope["path"],
        "root_path": scope.get("root_path", ""),
        "query": scope["query_string"].decode("latin-1"),
        "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
        "body": body.decode("utf-8", "replace"),
        "body_bytes": len(body),
        "client": scope["client"][0] if scope.get("client") else None,
    }
    data = json.dumps(payload, indent=2).encode() + b"\n"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})


async def _stream(query: dict[str, list[str]], send: Send) -> None:
    count = min(int(query.get("n", ["5"])[0] or 5), 1000)
    interval = min(float(query.get("interval", ["0.1"])[0] or 0.1), 10.0)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"),
                            (b"cache-control", b"no-cache")]})
    for i in range(count):
        event = f"id: {i}\ndata: {json.dumps({'n': i})}\n\n".encode()
        await send({"type": "http.response.body", "body": event, "more_body": True})
        await asyncio.sleep(interval)
    await send({"type": "http.response.body", "body": b""})

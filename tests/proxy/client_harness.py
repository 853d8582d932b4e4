"""Raw-socket helpers for the client-side suites (test_http1, test_robustness, test_asgi).

Builds on :mod:`gateway_harness` (its ``start_gateway``) and adds what protocol-level
tests need: exact bytes in, bytes out until close, a TLS listener, and a record of
every call of the loop's exception handler (``gw.loop_errors``), so a test can assert
that nothing escaped into the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from campusgate.config.model import Entities, Limits
from campusgate.proxy.gateway import Gateway
from campusgate.proxy.http1 import ClientConnection, ListenerState
from campusgate.proxy.snapshot import Snapshot, compile_snapshot

ECHO: dict[str, Any] = {"services": [{"name": "echo", "url": "builtin://echo",
                                      "routes": [{"name": "echo", "paths": ["/echo"]}]}]}

OK_REQUEST = b"GET /echo HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ClientGateway:
    port: int
    state: ListenerState
    snapshot: Snapshot
    ssl_client: ssl.SSLContext | None = None
    loop_errors: list[dict[str, Any]] = field(default_factory=list)

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=self.ssl_client,
            server_hostname="localhost" if self.ssl_client else None, limit=1 << 20)

    async def raw(self, data: bytes, wait: float = 5.0) -> bytes:
        """Send ``data``, then read until the server closes (or ``wait`` seconds)."""
        reader, writer = await self.open()
        try:
            with contextlib.suppress(ConnectionError):
                writer.write(data)
                await writer.drain()
            return await read_until_close(reader, wait)
        finally:
            writer.close()

    async def request(self, data: bytes, wait: float = 5.0) -> Reply:
        """Send ``data`` on a fresh connection and read one response."""
        reader, writer = await self.open()
        try:
            writer.write(data)
            await writer.drain()
            return await asyncio.wait_for(
                read_reply(reader, head_only=data.startswith(b"HEAD ")), wait)
        finally:
            writer.close()

    async def still_serving(self) -> bool:
        reply = await self.request(OK_REQUEST)
        return reply.status == 200 and reply.json()["path"] == "/echo"


async def read_until_close(reader: asyncio.StreamReader, wait: float = 5.0) -> bytes:
    parts: list[bytes] = []
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(wait):
            while chunk := await reader.read(65536):
                parts.append(chunk)
    return b"".join(parts)


def _head(head: bytes) -> tuple[int, list[tuple[str, str]]]:
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower().decode("latin-1"),
                        value.strip().decode("latin-1")))
    return status, headers


async def read_reply(reader: asyncio.StreamReader, head_only: bool = False) -> Reply:
    """Read one response (Content-Length, chunked or close-delimited); 1xx are returned too."""
    status, headers = _head((await reader.readuntil(b"\r\n\r\n"))[:-4])
    reply = Reply(status, headers, b"")
    if head_only or status in (204, 304) or status < 200:
        return reply
    te = reply.header("transfer-encoding")
    length = reply.header("content-length")
    if te is not None and "chunked" in te.lower():
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        reply.body = b"".join(parts)
    elif length is not None:
        reply.body = await reader.readexactly(int(length))
    else:
        reply.body = await reader.read()
    return reply


def split_replies(data: bytes) -> list[Reply]:
    """Complete Content-Length-framed responses in ``data``, in order."""
    out: list[Reply] = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        status, headers = _head(head)
        reply = Reply(status, headers, b"")
        length = 0 if status < 200 else int(reply.header("content-length") or 0)
        reply.body, data = rest[:length], rest[length:]
        out.append(reply)
    return out


@contextlib.asynccontextmanager
async def client_gateway(
    entities: dict[str, Any] | None = None,
    limits: Limits | None = None,
    *,
    ssl_server: ssl.SSLContext | None = None,
    ssl_client: ssl.SSLContext | None = None,
) -> AsyncIterator[ClientGateway]:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    old_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    snap = compile_snapshot(1, Entities.model_validate(entities or ECHO),
                            trusted_proxies=[], loop=loop)
    scheme = "https" if ssl_server else "http"
    state = ListenerState(Gateway(lambda: snap, scheme), limits or Limits(), scheme=scheme)
    server = await loop.create_server(lambda: ClientConnection(state, loop), "127.0.0.1", 0,
                                      ssl=ssl_server)
    gw = ClientGateway(server.sockets[0].getsockname()[1], state, snap, ssl_client, errors)
    try:
        yield gw
    finally:
        server.close()
        for conn in list(state.connections):
            if conn.transport is not None:
                conn.transport.abort()
        await snap.retire(None)
        await asyncio.sleep(0)
        loop.set_exception_handler(old_handler)

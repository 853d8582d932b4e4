"""Connections to upstream targets, and a keep-alive pool per target.

An :class:`UpstreamConnection` parses responses with httptools and hands every event
to the exchange using it (:class:`ResponseListener`), so a response body flows to the
client from inside ``data_received``: no coroutine per chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Callable
from typing import Protocol, cast

import httptools

from campusgate.config.model import PoolSettings
from campusgate.proxy.context import HeaderList

__all__ = ["ResponseListener", "TargetPool", "UpstreamConnection"]


class ResponseListener(Protocol):
    def on_head(self, status: int, headers: HeaderList, framed: bool) -> None: ...
    def on_body(self, data: bytes) -> None: ...
    def on_complete(self, keep_alive: bool) -> None: ...
    def on_upgrade(self, rest: bytes) -> None: ...
    def on_fault(self, message: str) -> None: ...
    def on_lost(self) -> None: ...
    def on_write_paused(self, paused: bool) -> None: ...
    def on_read(self, started: bool) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    def __init__(self, pool: TargetPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.listener: ResponseListener | None = None
        self.parser: httptools.HttpResponseParser | None = None
        self.closed = False
        self.reused = False
        self.created = pool.loop.time()
        self.idle_since = self.created
        self.last_read = self.created
        self.write_paused = False
        self.tunnel: Callable[[bytes], None] | None = None
        self._headers: HeaderList = []
        self._framed = False
        self._head_only = False
        self._head_seen = False

    # ---------------------------------------------------------------- exchange
    def begin(self, listener: ResponseListener, head_only: bool) -> None:
        """Prepare for one response; the caller then writes the request."""
        self.listener = listener
        if self.parser is None:  # kept across responses on a keep-alive connection
            self.parser = httptools.HttpResponseParser(self)
        self._headers = []
        self._framed = False
        self._head_only = head_only
        self._head_seen = False
        self.last_read = self.pool.loop.time()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool.discard(self)
            if self.transport is not None:
                self.transport.close()

    def abort(self) -> None:
        self.closed = True
        self.pool.discard(self)
        if self.transport is not None:
            self.transport.abort()

    # ---------------------------------------------------------------- transport events
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.discard(self)
        listener, self.listener = self.listener, None
        if listener is not None:
            if self._head_seen and not self._framed and not self._head_only:
                listener.on_complete(False)  # body delimited by the close
            else:
                listener.on_lost()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel(data)
            return
        listener, parser = self.listener, self.parser
        if listener is None or parser is None:
            self.abort()  # bytes nobody asked for: the connection is unusable
            return
        self.last_read = self.pool.loop.time()
        listener.on_read(True)  # lets the exchange batch what it writes to the client
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            rest = data[exc.args[0]:] if exc.args else b""
            if self.listener is listener:
                listener.on_upgrade(rest)
        except httptools.HttpParserError as exc:
            self.abort()
            attached = self.listener is listener  # not already answered and released
            self.listener = None
            if attached:
                listener.on_fault(f"invalid HTTP response from upstream: {exc}")
        finally:
            listener.on_read(False)

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.listener is not None:
            self.listener.on_write_paused(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.listener is not None:
            self.listener.on_write_paused(False)

    # ---------------------------------------------------------------- parser callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in (b"content-length", b"transfer-encoding"):
            self._framed = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.parser is None or self.listener is None:
            raise ConnectionError("a response nobody asked for")
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._headers = []  # interim response: wait for the final one
            self._framed = False
            return
        self._head_seen = True
        self.listener.on_head(status, self._headers, self._framed)
        if self._head_only or status in (204, 304):
            self.parser = None  # it would wait for a body that never comes: start anew
            self._finish(True)

    def on_body(self, body: bytes) -> None:
        if self.listener is not None and not self._head_only:
            self.listener.on_body(body)

    def on_message_complete(self) -> None:
        if self._head_seen and self.listener is not None and self.parser is not None:
            self._finish(self.parser.should_keep_alive())

    def _finish(self, keep_alive: bool) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.on_complete(keep_alive)


class TargetPool:
    """Keep-alive connections to one ``host:port`` (LIFO, bounded, aged out)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        settings: PoolSettings,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self.loop = loop
        self.host = host
        self.port = port
        self.settings = settings
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.idle: deque[UpstreamConnection] = deque()
        self.retired = False  # its snapshot was replaced: keep no connections

    def take_idle(self) -> UpstreamConnection | None:
        """The most recently used live idle connection, or None (never connects)."""
        now = self.loop.time()
        settings = self.settings
        idle = self.idle
        while idle:
            conn = idle.pop()
            if (
                conn.closed
                or conn.transport is None
                or conn.transport.is_closing()
                or now - conn.idle_since > settings.idle_timeout
                or now - conn.created > settings.max_lifetime
            ):
                conn.close()
                continue
            conn.reused = True
            return conn
        return None

    async def acquire(self, connect_timeout: float) -> UpstreamConnection:
        conn = self.take_idle()
        if conn is not None:
            return conn
        async with asyncio.timeout(connect_timeout):
            _, conn = await self.loop.create_connection(
                lambda: UpstreamConnection(self),
                self.host,
                self.port,
                ssl=self.ssl_context,
                server_hostname=self.server_hostname if self.ssl_context else None,
            )
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        now = self.loop.time()
        if (
            conn.closed
            or self.retired
            or len(self.idle) >= self.settings.max_idle
            or now - conn.created > self.settings.max_lifetime
        ):
            conn.close()
            return
        conn.listener = None
        conn.idle_since = now
        self.idle.append(conn)

    def discard(self, conn: UpstreamConnection) -> None:
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def sweep(self) -> None:
        """Close idle connections past their idle timeout or lifetime."""
        now = self.loop.time()
        for conn in list(self.idle):
            if (
                now - conn.idle_since > self.settings.idle_timeout
                or now - conn.created > self.settings.max_lifetime
            ):
                conn.close()

    def close_all(self) -> None:
        while self.idle:
            self.idle.pop().close()

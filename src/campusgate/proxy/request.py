"""One parsed client request, with its body as a stream.

The body arrives through :meth:`Request.feed_body` (from the parser callbacks) and
leaves either by *push* (:meth:`attach_sink`: each chunk goes straight to an upstream
connection, no coroutine per chunk) or by *pull* (:meth:`read_chunk`, for ASGI apps).
Until one is chosen, chunks wait in a small buffer; past ``HIGH_WATER`` the client
connection stops reading, so a large upload never sits in memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from campusgate.proxy.context import HeaderList

if TYPE_CHECKING:
    from campusgate.proxy.errors import ClientError
    from campusgate.proxy.http1 import ClientConnection

__all__ = ["ClientDisconnected", "Request"]

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


class ClientDisconnected(ConnectionError):
    """The client went away (or its body broke off) before the exchange was complete.

    A :class:`ConnectionError` (an ``OSError``), as the ASGI spec asks of ``send`` on a
    closed connection.
    """


class Request:
    __slots__ = (
        "_buffered",
        "_chunks",
        "_waiter",
        "body_done",
        "chunked",
        "conn",
        "content_length",
        "continue_sent",
        "disconnected",
        "eof_sink",
        "expect_continue",
        "fault",
        "has_body",
        "headers",
        "host",
        "keep_alive",
        "method",
        "on_disconnect",
        "path",
        "prepared",
        "query",
        "received",
        "sink",
        "target",
        "upgrade",
        "version",
    )

    def __init__(
        self,
        conn: ClientConnection,
        method: bytes,
        target: bytes,
        version: bytes,
        headers: HeaderList,
        keep_alive: bool,
        content_length: int | None,
        chunked: bool,
        upgrade: bool,
        expect_continue: bool,
        host: bytes,
    ) -> None:
        self.conn = conn
        self.method = method
        self.target = target
        path, _, query = target.partition(b"?")
        self.path = path.decode("latin-1")
        self.query = query.decode("latin-1")
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.content_length = content_length
        self.chunked = chunked
        self.upgrade = upgrade
        self.expect_continue = expect_continue
        self.host = host
        self.continue_sent = False
        self.has_body = chunked or bool(content_length)
        self.body_done = not self.has_body
        self.received = 0
        self.disconnected = False
        #: Set when the body broke off by the client's fault (malformed, too large, too
        #: slow): the connection answers with it if nothing else was sent yet.
        self.fault: ClientError | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self.sink: Callable[[bytes], None] | None = None
        self.eof_sink: Callable[[], None] | None = None
        self.on_disconnect: Callable[[], None] | None = None
        #: What a dispatcher already worked out (e.g. the route), kept for its task path.
        self.prepared: object = None

    @property
    def at_end(self) -> bool:
        """The whole body has arrived and been read."""
        return self.body_done and not self._chunks

    # ---- fed by the connection
    def feed_body(self, data: bytes) -> None:
        self.received += len(data)
        if self.sink is not None:
            self.sink(data)
            return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self.conn.pause_reading()
        self._wake()

    def feed_eof(self) -> None:
        self.body_done = True
        if self.eof_sink is not None:
            self.eof_sink()
        self._wake()

    def feed_disconnect(self) -> None:
        self.disconnected = True
        if self.on_disconnect is not None:
            self.on_disconnect()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- consumed by a dispatcher
    def send_continue(self) -> None:
        if (self.expect_continue and not self.continue_sent and not self.body_done
                and self.version == b"1.1"):
            self.continue_sent = True
            self.conn.write_raw(b"HTTP/1.1 100 Continue\r\n\r\n")

    def attach_sink(self, sink: Callable[[bytes], None], eof_sink: Callable[[], None]) -> None:
        """Push mode: hand buffered and future body chunks to ``sink``."""
        self.send_continue()
        while self._chunks:
            sink(self._chunks.popleft())
        self._buffered = 0
        if self.body_done:
            eof_sink()
        else:
            self.sink = sink
            self.eof_sink = eof_sink
            self.conn.resume_reading()

    def detach_sink(self) -> None:
        self.sink = None
        self.eof_sink = None

    async def read_chunk(self) -> bytes:
        """Pull mode: the next body chunk, or b"" at the end."""
        self.send_continue()
        while not self._chunks:
            if self.body_done:
                return b""
            if self.disconnected:
                raise ClientDisconnected()
            self._waiter = self.conn.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._buffered < LOW_WATER:
            self.conn.resume_reading()
        return data

"""The HTTP/1.1 server side of a client connection, on httptools.

Parses requests (pipelined ones are queued and answered in order), enforces the
listener's limits (header size and count, URL length, body size, header/body/idle
timeouts), rejects request-smuggling shapes, and gives each request to the listener's
dispatcher, which answers through the :class:`ResponseWriter` methods
(``proxy/responses.py``): ``send_local``, or ``start_response`` / ``write_body`` /
``end_body``.  The connection is three halves and this module: reading a request's
head (``_request_head.py``: the parser's callbacks), its timers
(``_conn_timers.py``), answering (``responses.py``); here, the transport's events,
the queue of requests and serving them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

import httptools

from campusgate.config.model import Limits
from campusgate.proxy._request_head import ParseFault, RequestHead
from campusgate.proxy.context import HeaderList
from campusgate.proxy.errors import (
    BadRequest,
    ClientError,
    ProxyError,
    TooManyConnections,
    VersionNotSupported,
)
from campusgate.proxy.request import Request
from campusgate.proxy.request_ids import new_request_id

__all__ = ["ClientConnection", "Dispatcher", "ListenerState"]



log = logging.getLogger("campusgate.proxy")

#: Chunked bodies: bytes of framing allowed beyond the data (chunk-size lines, CRLFs,
#: extensions).  Per chunk, plus a flat allowance; past it, "chunk extension abuse".
CHUNK_OVERHEAD_PER_CHUNK = 64
CHUNK_OVERHEAD_SLACK = 16 * 1024
#: A flood of connections over ``max_connections`` is logged at most this often (s).
OVERLOAD_LOG_INTERVAL = 10.0


class Dispatcher(Protocol):
    """Answers requests.  It may also have ``try_fast(conn, req) -> bool``: start
    answering with callbacks only (no task), and call
    :meth:`ClientConnection.fast_done` when the response is complete; or decline
    (a plugin that must await, no idle upstream connection, ...) and ``handle`` runs.
    """

    async def handle(self, conn: ClientConnection, req: Request) -> None: ...


#: A dispatcher's optional ``refused(conn, req, error, request_id, bytes_sent)``: told
#: of each request the connection answers itself, before or without dispatching it:
#: with a client error, or a connection over ``max_connections`` (``req`` None when
#: its head was not whole, or not read).
Refused = Callable[["ClientConnection", "Request | None", ProxyError, str, int], None]


class FastJob(Protocol):
    """A callback-only exchange (proxy/fastpath.py), as the connection's timer sees it."""

    def on_timeout(self, now: float) -> float | None: ...


@dataclass(eq=False)
class ListenerState:
    """What all connections of one listener share."""

    dispatcher: Dispatcher
    limits: Limits
    scheme: str = "http"
    connections: set[ClientConnection] = field(default_factory=set)
    closing: bool = False
    try_fast: Callable[[ClientConnection, Request], bool] | None = None
    refused: Refused | None = None
    #: Connections refused over ``max_connections``, and when that was last logged.
    overloads: int = 0
    overload_logged_at: float = float("-inf")

    def __post_init__(self) -> None:
        self.try_fast = getattr(self.dispatcher, "try_fast", None)
        self.refused = getattr(self.dispatcher, "refused", None)

    def idle_close_all(self) -> None:
        """Graceful shutdown: close idle connections now, busy ones after their response."""
        self.closing = True
        for conn in list(self.connections):
            conn.close_when_idle()


class ClientConnection(RequestHead, asyncio.Protocol):
    def __init__(self, listener: ListenerState, loop: asyncio.AbstractEventLoop) -> None:
        self.listener = listener
        self.limits = listener.limits
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip = ""
        self.client_port = 0
        self.pending: deque[Request | ClientError] = deque()
        self.task: asyncio.Task[None] | None = None
        self.fast: FastJob | None = None  # the callback-only exchange in flight
        self.closed = False
        self._read_paused = False
        self.write_paused = False
        self.write_paused_at = 0.0
        self._corked: list[bytes] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self.write_pause_hooks: list[tuple[Callable[[], None], Callable[[], None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_seconds: float | None = None
        self._timer_due = 0.0
        self._timer_start = 0.0
        self._header_armed = False
        self._tunnel: Callable[[bytes], None] | None = None
        self._upgrade_rest = b""
        self._stop_parsing = False
        self._close_after = False
        self._chunks = 0
        self._chunk_overhead = 0
        self._linger_until = 0.0
        # response state
        self._resp_chunked = False
        self._resp_body = True
        self._resp_keep = True
        self.response_started = False
        self.bytes_out = 0
        self._reset_message()

    # ------------------------------------------------------------ transport events
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.client_ip, self.client_port = peer[0], peer[1]
        if len(self.listener.connections) >= self.limits.max_connections:
            self._refuse_connection(self.transport)
            return
        self.listener.connections.add(self)
        self._arm(self.limits.header_timeout)

    def _refuse_connection(self, transport: asyncio.Transport) -> None:
        """Answer 503 to a connection over ``max_connections`` and close it, without
        reading it; the dispatcher records it (its request id is the answer's)."""
        listener = self.listener
        listener.overloads += 1
        now = asyncio.get_running_loop().time()
        if now >= listener.overload_logged_at + OVERLOAD_LOG_INTERVAL:  # a flood: one line
            listener.overload_logged_at = now
            log.warning("max_connections (%d) reached: %d connections refused so far",
                        self.limits.max_connections, listener.overloads)
        request_id = new_request_id()
        error = TooManyConnections("the gateway has too many open connections",
                                   [(b"x-request-id", request_id.encode())])
        self._stop_parsing = True
        self.send_local(None, error.response(request_id))
        self.closed = True
        transport.close()
        if listener.refused is not None:
            listener.refused(self, None, error, request_id, self.bytes_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.listener.connections.discard(self)
        self._kill_timer()
        for item in list(self.pending):  # feeding a disconnect may pop items
            if isinstance(item, Request):
                item.feed_disconnect()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError("client went away"))

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel(data)
            return
        if self._stop_parsing:
            self._last_body = self.loop.time()  # lingering: note that bytes still come
            return
        req = self._current
        counting = req is not None and req.chunked and not req.body_done
        before = req.received if req is not None else 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgrade_rest = data[exc.args[0]:] if exc.args else b""
            self._stop_parsing = True
            self.pause_reading()
            return
        except httptools.HttpParserCallbackError as exc:
            fault = exc.__context__
            error = fault.error if isinstance(fault, ParseFault) else BadRequest(str(exc))
            self._fail(error)
            return
        except httptools.HttpParserError as exc:
            if data.startswith(b"PRI * HTTP/2.0"):
                self._fail(VersionNotSupported(
                    "HTTP/2 with prior knowledge is not served here; use HTTP/1.1"))
            else:
                self._fail(BadRequest(f"malformed request: {exc}"))
            return
        if self._in_message and self._current is None and not self._header_armed:
            self._header_armed = True  # a head split over reads: now it is timed
            self._arm(self.limits.header_timeout)
        if counting and req is not None and not req.body_done and not self._stop_parsing:
            self._chunk_overhead += len(data) - (req.received - before)
            if self._chunk_overhead > (CHUNK_OVERHEAD_SLACK
                                       + CHUNK_OVERHEAD_PER_CHUNK * self._chunks):
                self._fail(BadRequest("too much chunk framing (chunk extensions)"))

    def pause_writing(self) -> None:
        self.write_paused = True
        self.write_paused_at = self.loop.time()
        for pause, _ in self.write_pause_hooks:
            pause()

    def resume_writing(self) -> None:
        self.write_paused = False
        for _, resume in self.write_pause_hooks:
            resume()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _start_next(self) -> None:
        """Serve the head of the queue: by callbacks when the dispatcher can, else a task."""
        item = self.pending[0]
        if (isinstance(item, Request) and item.body_done and not item.upgrade
                and item.fault is None):
            try_fast = self.listener.try_fast
            self.response_started = False
            self._resp_keep = item.keep_alive and not self.listener.closing
            try:
                if try_fast is not None and try_fast(self, item):
                    return
            except Exception:
                log.exception("fast dispatch failed: %s %r", item.method, item.target)
                if self.response_started:
                    self.abort_response()
                    return
        self.task = self.loop.create_task(self._serve())

    def hand_back(self, req: Request) -> None:
        """The callback path gave ``req`` up before answering: serve it with a task."""
        self.fast = None
        if not self.closed and self.pending and self.pending[0] is req:
            self.task = self.loop.create_task(self._serve())

    def fast_done(self, req: Request) -> None:
        """The callback-only answer to ``req`` is complete: move on, as ``_serve`` does."""
        self.fast = None
        if self.pending and self.pending[0] is req:
            self.pending.popleft()
        if self.closed:
            return
        if not self._resp_keep or self._close_after:
            self.close()
            return
        if self._read_paused:
            self.resume_reading()
        if self.pending:
            self._start_next()
        else:
            self._arm(self.limits.header_timeout if self._in_message
                      else self.limits.keepalive_timeout)
            if self.listener.closing:
                self.close()

    # ------------------------------------------------------------ serving
    def _fail(self, error: ClientError) -> None:
        """A parse-level fault: answer it in order, then close."""
        self._stop_parsing = True
        self.pause_reading()
        current = self._current
        if current is not None and not current.body_done and current in self.pending:
            # The request is (or will be) dispatched: it carries the error, and the
            # connection answers with it unless a response has already begun.
            if current.fault is None:
                current.fault = error
            current.feed_disconnect()
        else:
            self.pending.append(error)
        if self.task is None and self.fast is None:
            self.task = self.loop.create_task(self._serve())

    async def _serve(self) -> None:
        linger = False
        try:
            while self.pending and not self.closed:
                item = self.pending[0]
                if isinstance(item, ClientError):
                    self._refuse(None, item)
                    linger = True
                    break
                if not item.body_done:
                    self._arm(self.limits.body_timeout)
                await self._serve_one(item)
                self.pending.popleft()
                if not item.body_done or item.fault is not None:
                    linger = True  # we cannot find the next request's start: close
                    break
                if not self._resp_keep or self._close_after or self.closed:
                    break
                self.resume_reading()
            else:
                if not self.closed:
                    self._arm(self.limits.header_timeout if self._in_message
                              else self.limits.keepalive_timeout)
                    if self.listener.closing:
                        self.close()
                return
            if linger:
                self._linger()
            else:
                self.close()
        finally:
            self.task = None

    def _refuse(self, req: Request | None, error: ClientError) -> None:
        """Answer ``error`` for a request the connection refuses itself, and tell
        the dispatcher (its access record)."""
        sent = self.bytes_out
        request_id = self.send_error(req, error)
        refused = self.listener.refused
        if refused is not None:
            refused(self, req, error, request_id, self.bytes_out - sent)

    def partial_head(self) -> tuple[bytes, bytes, HeaderList, bytes]:
        """What was read of a request refused before its head was whole: method
        (empty when the request line was not read), target, headers, Host."""
        method = self.parser.get_method() if self._url else b""
        return method, self._url, self._headers, self._host

    async def _serve_one(self, req: Request) -> None:
        self.response_started = False
        self._resp_keep = req.keep_alive and not self.listener.closing and not req.upgrade
        fault = req.fault  # a local: req.fault may be set while the handler awaits
        if fault is not None:
            self._refuse(req, fault)
            return
        try:
            await self.listener.dispatcher.handle(self, req)
        except ProxyError as exc:  # a dispatcher without its own error rendering
            if not self.response_started and not self.closed:
                self.send_error(req, req.fault or exc)
            else:
                self._resp_keep = False
            return
        except Exception:
            log.exception("request handler failed: %s %r", req.method, req.target)
            if not self.response_started and not self.closed:
                self.send_error(req, req.fault or ProxyError(
                    "the gateway failed to handle the request"))
            else:
                self._resp_keep = False
            return
        if not self.response_started and not self.closed:
            if req.fault is None:
                log.error("request handler gave no answer: %s %r", req.method, req.target)
            self.send_error(req, req.fault or ProxyError(
                "the gateway failed to handle the request"))

    # ------------------------------------------------------------ tunnel (WebSocket)
    def start_tunnel(self, on_data: Callable[[bytes], None]) -> bytes:
        """Switch to raw bytes; returns what the client already sent past the head."""
        self._tunnel = on_data
        self._resp_keep = False
        self._cancel_timer()
        rest, self._upgrade_rest = self._upgrade_rest, b""
        self.resume_reading()
        return rest

    # ------------------------------------------------------------ flow and lifetime
    def pause_reading(self) -> None:
        if not self._read_paused and self.transport is not None and not self.closed:
            self._read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._read_paused and self.transport is not None and not self.closed:
            self._read_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.uncork()
            self.closed = True
            self.listener.connections.discard(self)
            self._kill_timer()
            self.transport.close()

    def close_when_idle(self) -> None:
        self._close_after = True
        if self.task is None and self.fast is None and not self.pending:
            self.close()


"""Writing responses on a client connection: local answers, proxied heads, bodies.

:class:`ResponseWriter` is the answering half of
:class:`~campusgate.proxy.http1.ClientConnection`: it chooses each response's framing
(Content-Length, chunked, or close-delimited for HTTP/1.0), keeps the connection's
keep-alive decision, batches writes (``cork``/``uncork``: one send per response) and
waits for a slow client (``drain``, bounded by ``limits.send_timeout``).
"""

from __future__ import annotations

import asyncio
import logging

from campusgate.config.model import Limits
from campusgate.proxy import wire
from campusgate.proxy.context import HeaderList, LocalResponse
from campusgate.proxy.errors import ProxyError
from campusgate.proxy.request import Request
from campusgate.proxy.request_ids import new_request_id

__all__ = ["ResponseWriter"]

log = logging.getLogger("campusgate.proxy")

# What an upstream's head never passes on: hop-by-hop headers, framing (the client
# connection frames its own response) and X-Request-Id (the gateway sets its own).
_DROP_PROXIED = wire.HOP_BY_HOP | {b"content-length", b"x-request-id"}


class ResponseWriter:
    """The answering half of a client connection (state lives on the connection)."""

    transport: asyncio.Transport | None
    closed: bool
    limits: Limits
    loop: asyncio.AbstractEventLoop
    client_ip: str
    response_started: bool
    #: Bytes written to the client, or held for it (corked): counted as they are
    #: given, so the log phase reads an attribute, not a method, twice a request.
    bytes_out: int
    write_paused: bool
    _resp_keep: bool
    _resp_body: bool
    _resp_chunked: bool
    _corked: list[bytes] | None
    _drain_waiter: asyncio.Future[None] | None

    def send_error(self, req: Request | None, error: ProxyError) -> str:
        """Answer with ``error`` under a fresh request id (body and X-Request-Id
        agree); returns the id."""
        request_id = new_request_id()
        resp = error.response(request_id)
        resp.headers.append((b"x-request-id", request_id.encode()))
        self.send_local(req, resp)
        return request_id

    # ------------------------------------------------------------ answering
    def send_local(self, req: Request | None, resp: LocalResponse) -> None:
        head_only = req is not None and req.method == b"HEAD"
        headers: HeaderList
        if resp.status in (204, 304) or resp.status < 200:
            # no body, and no Content-Length (RFC 9110 sections 8.6, 15.3.5)
            headers = []
            head_only = True
        else:
            headers = [
                (b"content-type", resp.content_type),
                (b"content-length", b"%d" % len(resp.body)),
            ]
        headers.extend(resp.headers)
        if req is not None and req.has_body and not req.body_done:
            self._resp_keep = False  # unread body: close rather than drain
        if not self._resp_keep or req is None:
            headers.append((b"connection", b"close"))
            self._resp_keep = False
        self.response_started = True
        data = wire.response_head(resp.status, headers)
        if not head_only:
            data += resp.body
        self.write_raw(data)

    def start_response(self, req: Request, status: int, headers: HeaderList,
                       content_length: int | None) -> None:
        """Write a status line and headers; choose the body framing.

        ``headers`` must hold no hop-by-hop or framing headers; this adds them.
        """
        parts = [wire.status_line(status)]
        wire.header_lines(parts, headers)
        self._framing(req, status, content_length, parts)
        self.write_raw(b"".join(parts))

    def start_proxied(self, req: Request, status: int, upstream: HeaderList, framed: bool,
                      extra: bytes) -> bool:
        """:meth:`start_response` for an upstream's own head when no plugin edits it:
        filter, frame and serialize in one pass.  ``extra`` holds serialized header
        lines to add.  False (nothing written) when the head needs the general path
        (a Connection header naming more headers to drop)."""
        parts = [wire.status_line(status)]
        content_length: int | None = None
        chunked = False
        drop = _DROP_PROXIED
        for name, value in upstream:
            if name in drop:
                if name == b"content-length":
                    value = value.strip()
                    if framed and value.isdigit():
                        content_length = int(value)
                elif name == b"transfer-encoding":
                    chunked = True
                elif name == b"connection" and wire.connection_tokens(upstream) - drop:
                    return False
                continue
            parts += (name, b": ", value, b"\r\n")
        parts.append(extra)
        self._framing(req, status, None if chunked else content_length, parts)
        self.write_raw(b"".join(parts))
        return True

    def _framing(self, req: Request, status: int, content_length: int | None,
                 parts: list[bytes]) -> None:
        """Choose the body framing; add its header lines and the blank line."""
        self.response_started = True
        no_body = req.method == b"HEAD" or status in (204, 304) or status < 200
        self._resp_body = not no_body
        self._resp_chunked = False
        if req.has_body and not req.body_done and not req.upgrade:
            self._resp_keep = False
        if content_length is not None:
            if status != 204 and status >= 200:
                parts.append(b"content-length: %d\r\n" % content_length)
        elif not no_body:
            if req.version == b"1.1":
                self._resp_chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                self._resp_keep = False
        if not self._resp_keep:
            parts.append(b"connection: close\r\n\r\n")
        elif req.version == b"1.0":
            parts.append(b"connection: keep-alive\r\n\r\n")
        else:
            parts.append(b"\r\n")

    def write_body(self, data: bytes) -> None:
        if not data or not self._resp_body:
            return
        self.write_raw(wire.chunk(data) if self._resp_chunked else data)

    def end_body(self) -> None:
        if self._resp_chunked and self._resp_body:
            self.write_raw(wire.LAST_CHUNK)

    def abort_response(self) -> None:
        """The body cannot be finished (upstream died): the client must see a cut."""
        self._resp_keep = False
        self._uncounted(self._corked)
        self._corked = None
        if self.transport is not None:
            self.transport.abort()

    def write_raw(self, data: bytes) -> None:
        corked = self._corked
        if corked is not None:
            corked.append(data)
            self.bytes_out += len(data)
            return
        transport = self.transport
        if transport is not None and not self.closed:
            self.bytes_out += len(data)
            transport.write(data)

    def cork(self) -> None:
        """Hold writes until :meth:`uncork`, then send them in one system call."""
        if self._corked is None:
            self._corked = []

    def uncork(self) -> None:
        corked, self._corked = self._corked, None
        if not corked:
            return
        transport = self.transport
        if transport is not None and not self.closed:  # counted as they were held
            transport.write(corked[0] if len(corked) == 1 else b"".join(corked))
        else:
            self._uncounted(corked)

    def _uncounted(self, held: list[bytes] | None) -> None:
        """Held bytes that will never be sent leave the count."""
        if held:
            self.bytes_out -= sum(map(len, held))

    async def drain(self) -> None:
        """Wait until the client reads what was written; give up after send_timeout."""
        if self.write_paused and not self.closed:
            self._drain_waiter = self.loop.create_future()
            try:
                async with asyncio.timeout(self.limits.send_timeout):
                    await self._drain_waiter
            except TimeoutError:
                log.info("client %s read nothing for %.0f s; closing", self.client_ip,
                         self.limits.send_timeout)
                self.abort_response()
                raise ConnectionResetError("the client stopped reading") from None
            finally:
                self._drain_waiter = None

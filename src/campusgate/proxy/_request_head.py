"""A client connection's request heads: httptools' parser callbacks, which check a
request as it is read and make its :class:`~campusgate.proxy.request.Request`.

:class:`RequestHead` is the reading half of
:class:`~campusgate.proxy.http1.ClientConnection` (state lives on the connection, as
for :class:`~campusgate.proxy._conn_timers.ConnectionTimers`, which it extends).  A
callback that finds the request at fault raises :class:`ParseFault`, which carries
the client error the connection answers with: the URL, header and body limits;
framing that could smuggle a request (both Content-Length and Transfer-Encoding,
several Content-Lengths, a coding other than chunked, Transfer-Encoding in HTTP/1.0:
RFC 9112 6); a missing or repeated Host; an absolute-form target (RFC 9112 3.2.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import httptools

from campusgate.proxy._conn_timers import ConnectionTimers
from campusgate.proxy.context import HeaderList
from campusgate.proxy.errors import (
    BadRequest,
    ClientError,
    HeadersTooLarge,
    PayloadTooLarge,
    UriTooLong,
    VersionNotSupported,
)
from campusgate.proxy.request import Request

if TYPE_CHECKING:
    from campusgate.proxy.http1 import ClientConnection

__all__ = ["ParseFault", "RequestHead"]

_SCHEMES = (b"http://", b"https://")


class ParseFault(Exception):
    """Raised inside parser callbacks; carries the client error to answer with."""

    def __init__(self, error: ClientError) -> None:
        self.error = error


class RequestHead(ConnectionTimers):
    """The parser's callbacks of a client connection."""

    parser: httptools.HttpRequestParser
    _header_armed: bool
    _chunks: int
    _chunk_overhead: int

    if TYPE_CHECKING:  # the connection's own
        def pause_reading(self) -> None: ...
        def _start_next(self) -> None: ...

    def _reset_message(self) -> None:
        self._url = b""
        self._headers: HeaderList = []
        self._header_bytes = 0
        self._cl_values: list[bytes] = []
        self._te: bytes | None = None
        self._host = b""
        self._expect = False
        self._current: Request | None = None
        self._in_message = False
        self._chunks = 0
        self._chunk_overhead = 0

    def on_message_begin(self) -> None:
        self._reset_message()
        self._in_message = True
        self._header_armed = False
        # The header timer is armed by data_received only if the head is not complete
        # by the end of this read: most requests arrive in one read and need none.

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.limits.max_url_bytes:
            raise ParseFault(UriTooLong(
                f"the URL is longer than {self.limits.max_url_bytes} bytes"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.limits.max_header_bytes:
            raise ParseFault(HeadersTooLarge(
                f"request headers are larger than {self.limits.max_header_bytes} bytes"))
        if len(self._headers) >= self.limits.max_headers:
            raise ParseFault(HeadersTooLarge(f"more than {self.limits.max_headers} headers"))
        name = name.lower()
        if name == b"content-length":
            self._cl_values.append(value.strip())
        elif name == b"transfer-encoding":
            if self._te is not None:
                raise ParseFault(BadRequest("duplicate Transfer-Encoding header"))
            self._te = value.strip().lower()
        elif name == b"host":
            if self._host:
                raise ParseFault(BadRequest("duplicate Host header"))
            self._host = value.strip()
        elif name == b"expect":
            if value.strip().lower() != b"100-continue":
                raise ParseFault(ClientError("unsupported Expect header", []))
            self._expect = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        content_length: int | None = None
        if self._cl_values:
            if self._te is not None:
                raise ParseFault(BadRequest("both Content-Length and Transfer-Encoding"))
            if len(self._cl_values) > 1:
                raise ParseFault(BadRequest("more than one Content-Length header"))
            raw = self._cl_values[0]
            if not raw.isdigit() or len(raw) > 18:
                raise ParseFault(BadRequest("invalid Content-Length"))
            content_length = int(raw)
            if content_length > self.limits.max_body_bytes:
                raise ParseFault(PayloadTooLarge(
                    f"the body is larger than {self.limits.max_body_bytes} bytes"))
        if self._te is not None and self._te != b"chunked":
            raise ParseFault(BadRequest("unsupported Transfer-Encoding (only 'chunked')"))
        version = self.parser.get_http_version().encode()
        if version != b"1.1" and version != b"1.0":
            raise ParseFault(VersionNotSupported(
                f"HTTP/{version.decode()} is not supported; use HTTP/1.1"))
        if self._te is not None and version == b"1.0":
            # RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
            raise ParseFault(BadRequest("Transfer-Encoding in an HTTP/1.0 request"))
        target = self._url
        host = self._host
        if target[:1] != b"/" and target[:8].lower().startswith(_SCHEMES):
            target, host = _absolute_form(target)
        if version == b"1.1" and not host:
            raise ParseFault(BadRequest("HTTP/1.1 request without Host header"))
        upgrade = self.parser.should_upgrade()
        req = Request(
            cast("ClientConnection", self), self.parser.get_method(), target, version,
            self._headers, self.parser.should_keep_alive(), content_length,
            self._te is not None, upgrade, self._expect, host,
        )
        self._current = req
        self.pending.append(req)
        if len(self.pending) > 1:
            self.pause_reading()  # pipelined: finish the one before first
        self._arm(self.limits.body_timeout) if req.has_body else self._cancel_timer()
        if self.task is None and self.fast is None:
            self._start_next()

    def on_chunk_header(self) -> None:
        self._chunks += 1

    def on_body(self, body: bytes) -> None:
        req = self._current
        if req is None:
            return
        if req.received + len(body) > self.limits.max_body_bytes:
            raise ParseFault(PayloadTooLarge(
                f"the body is larger than {self.limits.max_body_bytes} bytes"))
        self._last_body = self.loop.time()
        req.feed_body(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        req = self._current
        if req is not None:
            req.feed_eof()
            if self.pending and self.pending[0] is req:
                self._cancel_timer()


def _absolute_form(url: bytes) -> tuple[bytes, bytes]:
    """``http://host[:port]/path?q`` -> (``/path?q``, ``host[:port]``) (RFC 9112 3.2.2)."""
    scheme_end = url.index(b"://") + 3
    slash = url.find(b"/", scheme_end)
    query = url.find(b"?", scheme_end)
    ends = [i for i in (slash, query) if i >= 0]
    end = min(ends) if ends else len(url)
    authority = url[scheme_end:end]
    if not authority or b"@" in authority:
        raise ParseFault(BadRequest("invalid absolute-form request target"))
    target = url[end:]
    if not target.startswith(b"/"):
        target = b"/" + target
    return target, authority


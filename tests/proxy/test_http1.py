"""The client-facing HTTP/1.1 server (proxy/http1.py) over real sockets on 127.0.0.1.

Exact bytes go in through raw streams; what a client would notice is asserted:
statuses, framing, ordering, connection reuse or close, timeouts, limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from client_harness import (
    OK_REQUEST,
    ClientGateway,
    client_gateway,
    read_reply,
    read_until_close,
    split_replies,
)
from gateway_harness import HttpUpstream, UpstreamRequest, ok_response

from campusgate.config.model import Limits, Listener, TlsListener
from campusgate.runtime import server_ssl_context


@pytest.fixture
async def gw() -> AsyncIterator[ClientGateway]:
    async with client_gateway() as gateway:
        yield gateway
    assert not gateway.loop_errors


def upstream_entities(port: int, **service: Any) -> dict[str, Any]:
    return {"services": [
        {"name": "echo", "url": "builtin://echo", "routes": [{"name": "echo", "paths": ["/echo"]}]},
        {"name": "up", "url": f"http://127.0.0.1:{port}",
         "routes": [{"name": "up", "paths": ["/up"]}], **service},
    ]}


# ------------------------------------------------------------------ connection reuse


async def test_keep_alive_serves_several_requests_on_one_connection(gw: ClientGateway) -> None:
    reader, writer = await gw.open()
    for i in range(3):
        writer.write(f"GET /echo/{i} HTTP/1.1\r\nHost: gw\r\n\r\n".encode())
        reply = await read_reply(reader)
        assert reply.status == 200
        assert reply.json()["path"] == f"/echo/{i}"
        assert reply.header("connection") is None
    writer.close()


async def test_http10_closes_by_default(gw: ClientGateway) -> None:
    raw = await gw.raw(b"GET /echo HTTP/1.0\r\n\r\n", wait=3)
    (reply,) = split_replies(raw)
    assert reply.status == 200
    assert reply.header("connection") == "close"


async def test_http10_keep_alive_when_asked(gw: ClientGateway) -> None:
    reader, writer = await gw.open()
    for _ in range(2):
        writer.write(b"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        reply = await asyncio.wait_for(read_reply(reader), 3)
        assert reply.status == 200
        assert reply.header("connection") == "keep-alive"
    writer.close()


async def test_pipelined_requests_are_answered_in_order_with_bodies(gw: ClientGateway) -> None:
    data = (b"GET /echo/1 HTTP/1.1\r\nHost: gw\r\n\r\n"
            b"POST /echo/2 HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello"
            b"POST /echo/3 HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            b"GET /echo/4 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
    replies = split_replies(await gw.raw(data))
    assert [r.status for r in replies] == [200, 200, 200, 200]
    assert [r.json()["path"] for r in replies] == ["/echo/1", "/echo/2", "/echo/3", "/echo/4"]
    assert [r.json()["body"] for r in replies] == ["", "hello", "abcde", ""]


async def test_head_has_no_body_and_the_connection_stays_usable(gw: ClientGateway) -> None:
    reader, writer = await gw.open()
    writer.write(b"HEAD /echo HTTP/1.1\r\nHost: gw\r\n\r\n")
    head = await asyncio.wait_for(read_reply(reader, head_only=True), 3)
    assert head.status == 200
    assert int(head.header("content-length") or 0) > 0
    writer.write(b"GET /echo/after HTTP/1.1\r\nHost: gw\r\n\r\n")
    # had the HEAD answer carried a body, this would parse it as a status line
    after = await asyncio.wait_for(read_reply(reader), 3)
    assert after.status == 200 and after.json()["path"] == "/echo/after"
    writer.close()


async def test_head_of_an_error_has_no_body(gw: ClientGateway) -> None:
    raw = await gw.raw(b"HEAD /nowhere HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 404 ")
    assert raw.endswith(b"\r\n\r\n")


# ------------------------------------------------------------------ chunked bodies


async def test_chunked_request_body_reaches_the_echo_app(gw: ClientGateway) -> None:
    reply = await gw.request(
        b"POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert reply.status == 200
    assert reply.json()["body"] == "hello world"


async def test_chunked_body_forwarded_to_a_real_upstream_and_chunked_response_back() -> None:
    async def handler(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                     b"4\r\ngot \r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(req.body), req.body))

    upstream = await HttpUpstream(handler).start()
    try:
        async with client_gateway(upstream_entities(upstream.port)) as gw:
            reader, writer = await gw.open()
            writer.write(b"POST /up HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"3\r\nabc\r\n")
            await asyncio.sleep(0.05)
            writer.write(b"4\r\ndefg\r\n0\r\n\r\n")
            reply = await asyncio.wait_for(read_reply(reader), 5)
            writer.close()
    finally:
        await upstream.close()
    assert reply.status == 200
    assert reply.header("transfer-encoding") == "chunked"
    assert reply.body == b"got abcdefg"
    assert upstream.requests[0].body == b"abcdefg"


# ------------------------------------------------------------------ Expect: 100-continue


async def test_expect_continue_gets_100_then_the_answer(gw: ClientGateway) -> None:
    reader, writer = await gw.open()
    writer.write(b"POST /echo HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\n"
                 b"Content-Length: 4\r\n\r\n")
    interim = await asyncio.wait_for(read_reply(reader), 3)
    assert interim.status == 100
    writer.write(b"data")
    reply = await asyncio.wait_for(read_reply(reader), 3)
    assert reply.status == 200 and reply.json()["body"] == "data"
    writer.close()


async def test_expect_continue_rejected_early_gets_no_100_and_a_clean_close(
        gw: ClientGateway) -> None:
    reader, writer = await gw.open()
    writer.write(b"POST /nowhere HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\n"
                 b"Content-Length: 4\r\n\r\n")
    raw = await read_until_close(reader, 5)
    writer.close()
    assert raw.startswith(b"HTTP/1.1 404 ")
    assert b"100 Continue" not in raw
    assert b"connection: close" in raw.lower()


async def test_expect_continue_over_the_body_limit_gets_413_without_100() -> None:
    async with client_gateway(limits=Limits(max_body_bytes=1000)) as gw:
        raw = await gw.raw(b"POST /echo HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\n"
                           b"Content-Length: 5000\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in raw


async def test_413_reaches_a_client_that_sends_its_body_anyway() -> None:
    """Lingering close: the unread body must not turn the close into a reset."""
    async with client_gateway(limits=Limits(max_body_bytes=1000)) as gw:
        reader, writer = await gw.open()
        writer.write(b"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 3000000\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(30):
                writer.write(b"x" * 100_000)
                await writer.drain()
        raw = await read_until_close(reader, 5)
        writer.close()
        assert raw.startswith(b"HTTP/1.1 413 ")
        assert await gw.still_serving()


# ------------------------------------------------------------------ limits


async def test_url_too_long_is_414() -> None:
    async with client_gateway(limits=Limits(max_url_bytes=300)) as gw:
        reply = await gw.request(b"GET /echo/" + b"a" * 400 + b" HTTP/1.1\r\nHost: gw\r\n\r\n")
        assert reply.status == 414
        assert reply.json()["error"]["code"] == "uri_too_long"
        assert await gw.still_serving()


async def test_headers_too_large_and_too_many_are_431() -> None:
    async with client_gateway(limits=Limits(max_header_bytes=2048, max_headers=10)) as gw:
        big = await gw.request(b"GET /echo HTTP/1.1\r\nHost: gw\r\nX-Big: "
                               + b"a" * 3000 + b"\r\n\r\n")
        many = await gw.request(b"GET /echo HTTP/1.1\r\nHost: gw\r\n"
                                + b"".join(b"X-%d: v\r\n" % i for i in range(12)) + b"\r\n")
        assert (big.status, many.status) == (431, 431)
        assert await gw.still_serving()


async def test_body_too_large_by_content_length_and_by_a_growing_chunked_body() -> None:
    async with client_gateway(limits=Limits(max_body_bytes=1000)) as gw:
        by_length = await gw.request(
            b"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 1001\r\n\r\n" + b"x" * 1001)
        reader, writer = await gw.open()
        writer.write(b"POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            writer.write(b"190\r\n" + b"y" * 400 + b"\r\n")
            await asyncio.sleep(0.01)
        raw = await read_until_close(reader, 5)
        writer.close()
        assert by_length.status == 413
        assert raw.startswith(b"HTTP/1.1 413 ")
        assert b'"payload_too_large"' in raw
        assert await gw.still_serving()


async def test_slowloris_headers_get_408_and_close() -> None:
    async with client_gateway(limits=Limits(header_timeout=0.4)) as gw:
        reader, writer = await gw.open()
        request = b"GET /echo HTTP/1.1\r\nHost: gw\r\nX-Slow: " + b"z" * 100
        head = asyncio.create_task(reader.readuntil(b"\r\n\r\n"))
        with contextlib.suppress(ConnectionError):
            for byte in request:  # one byte every 20 ms: never a complete head
                if head.done():
                    break
                writer.write(bytes([byte]))
                await asyncio.sleep(0.02)
        raw = await head + await read_until_close(reader, 3)
        writer.close()
        assert raw.startswith(b"HTTP/1.1 408 ")
        assert b'"request_timeout"' in raw
        assert await gw.still_serving()


async def test_body_timeout_gets_408_and_close() -> None:
    async with client_gateway(limits=Limits(body_timeout=0.3)) as gw:
        reader, writer = await gw.open()
        writer.write(b"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nabc")
        raw = await read_until_close(reader, 3)
        writer.close()
        assert raw.startswith(b"HTTP/1.1 408 ")
        assert b"body took too long" in raw


async def test_keep_alive_idle_timeout_closes_the_connection() -> None:
    async with client_gateway(limits=Limits(keepalive_timeout=0.3)) as gw:
        reader, writer = await gw.open()
        writer.write(b"GET /echo HTTP/1.1\r\nHost: gw\r\n\r\n")
        assert (await read_reply(reader)).status == 200
        assert await asyncio.wait_for(reader.read(100), 3) == b""  # closed by the server
        writer.close()
        assert not gw.state.connections


async def test_max_connections_refuses_the_extra_one_with_503() -> None:
    async with client_gateway(limits=Limits(max_connections=2)) as gw:
        held = [await gw.open(), await gw.open()]
        await asyncio.sleep(0.05)
        raw = await gw.raw(OK_REQUEST, wait=3)
        assert raw.startswith(b"HTTP/1.1 503 ")
        assert b"too_many_connections" in raw
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.1)
        assert await gw.still_serving()


async def test_a_client_that_closes_early_is_treated_as_gone() -> None:
    """EOF from the client means it went away (as nginx's 499): the upstream is let go."""
    started = asyncio.Event()
    released = asyncio.Event()

    async def handler(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        started.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(released.wait(), 5)
        writer.write(ok_response())

    upstream = await HttpUpstream(handler).start()
    try:
        async with client_gateway(upstream_entities(upstream.port)) as gw:
            reader, writer = await gw.open()
            writer.write(b"GET /up/slow HTTP/1.1\r\nHost: gw\r\n\r\n")
            await asyncio.wait_for(started.wait(), 3)
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 3) == b""
            writer.close()
            await asyncio.sleep(0.05)
            assert not gw.state.connections
            released.set()
            assert await gw.still_serving()
    finally:
        await upstream.close()


async def test_upgrade_answered_without_switching_closes_cleanly(gw: ClientGateway) -> None:
    raw = await gw.raw(b"GET /echo HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\n"
                       b"Upgrade: h2c\r\n\r\n", wait=3)
    (reply,) = split_replies(raw)
    assert reply.status == 200
    assert reply.header("connection") == "close"


async def test_absolute_form_target_is_served_by_its_path_and_authority(
        gw: ClientGateway) -> None:
    reply = await gw.request(b"GET http://example.edu:8080/echo/x?q=1 HTTP/1.1\r\n"
                             b"Host: other\r\nConnection: close\r\n\r\n")
    assert reply.status == 200
    assert reply.json()["path"] == "/echo/x"
    assert reply.json()["query"] == "q=1"


# ------------------------------------------------------------------ request ids


async def test_a_valid_client_request_id_is_kept_upstream_and_returned() -> None:
    upstream = await HttpUpstream().start()
    try:
        async with client_gateway(upstream_entities(upstream.port)) as gw:
            reply = await gw.request(b"GET /up HTTP/1.1\r\nHost: gw\r\n"
                                     b"X-Request-Id: abc-123.DEF:9\r\nConnection: close\r\n\r\n")
    finally:
        await upstream.close()
    assert reply.header("x-request-id") == "abc-123.DEF:9"
    assert upstream.requests[0].header_all("x-request-id") == ["abc-123.DEF:9"]


@pytest.mark.parametrize("bad", [b"x" * 201, b"has space", b"semi;colon", b"<script>"])
async def test_an_invalid_client_request_id_is_replaced(gw: ClientGateway, bad: bytes) -> None:
    reply = await gw.request(b"GET /echo HTTP/1.1\r\nHost: gw\r\nX-Request-Id: " + bad
                             + b"\r\nConnection: close\r\n\r\n")
    rid = reply.header("x-request-id")
    assert rid is not None and rid != bad.decode() and len(rid) == 32
    assert reply.json()["headers"]["x-request-id"] == rid


@pytest.mark.parametrize("request_bytes", [
    b"GET /nowhere HTTP/1.1\r\nHost: gw\r\n\r\n",  # from the gateway: 404
    b"GET /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: x\r\n\r\n",  # from the parser: 400
    b"GET /echo HTTP/3.0\r\nHost: gw\r\n\r\n",  # 505
])
async def test_error_bodies_and_headers_carry_the_same_request_id(
        gw: ClientGateway, request_bytes: bytes) -> None:
    reply = await gw.request(request_bytes)
    assert reply.status >= 400
    assert reply.header("content-type") == "application/json"
    error = reply.json()["error"]
    assert set(error) == {"code", "message", "request_id"}
    assert reply.header("x-request-id") == error["request_id"]


# ------------------------------------------------------------------ TLS listener


async def test_https_listener_serves_with_a_trustme_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(tmp_path / "cert.pem", append=True)
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    listener = Listener(address="127.0.0.1:8443", tls=TlsListener(
        cert_file=str(tmp_path / "cert.pem"), key_file=str(tmp_path / "key.pem")))
    server_ctx = server_ssl_context(listener)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with client_gateway(ssl_server=server_ctx, ssl_client=client_ctx) as gw:
        reader, writer = await gw.open()
        for _ in range(2):  # keep-alive over TLS
            writer.write(b"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nabc")
            reply = await asyncio.wait_for(read_reply(reader), 5)
            assert reply.status == 200 and reply.json()["body"] == "abc"
        ssl_obj = writer.get_extra_info("ssl_object")
        assert ssl_obj is not None and ssl_obj.selected_alpn_protocol() in (None, "http/1.1")
        writer.close()
        bad = await gw.raw(b"GET /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n"
                           b"Host: gw\r\n\r\n")
        assert bad.startswith(b"HTTP/1.1 400 ")
        assert await gw.still_serving()


# ------------------------------------------------------------------ streaming

MB = 1024 * 1024
STREAM_BYTES = 200 * MB


class _BulkUpstream(asyncio.Protocol):
    """Counts an uploaded body without keeping it; or sends ``STREAM_BYTES`` of zeros."""

    def __init__(self) -> None:
        self.head = b""
        self.remaining = -1
        self.received = 0
        self.paused = False
        self.transport: asyncio.Transport | None = None
        self.piece = bytes(MB)
        self.to_send = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.remaining < 0:
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            head, _, data = self.head.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            self.remaining = length
            if head.startswith(b"GET "):
                self.to_send = STREAM_BYTES
                self._write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % STREAM_BYTES)
                self._pump()
                return
        self.received += len(data)
        self.remaining -= len(data)
        if self.remaining == 0:
            body = b"%d" % self.received
            self._write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))

    def _write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def _pump(self) -> None:
        while self.to_send and not self.paused:
            self.to_send -= MB
            self._write(self.piece)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._pump()


@contextlib.asynccontextmanager
async def bulk_gateway() -> AsyncIterator[ClientGateway]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_BulkUpstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with client_gateway(upstream_entities(port, timeouts={"read": 20}),
                                  limits=Limits(max_body_bytes=STREAM_BYTES)) as gw:
            yield gw
    finally:
        server.close()


@contextlib.contextmanager
def traced_peak() -> Any:
    import tracemalloc

    tracemalloc.start()
    result = {"peak": 0}
    try:
        yield result
    finally:
        result["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


async def test_a_200mb_upload_streams_through_without_buffering() -> None:
    async with bulk_gateway() as gw:
        reader, writer = await gw.open()
        piece = bytes(MB)
        with traced_peak() as mem:
            writer.write(b"POST /up HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n\r\n"
                         % STREAM_BYTES)
            for _ in range(STREAM_BYTES // MB):
                writer.write(piece)
                await writer.drain()
            reply = await asyncio.wait_for(read_reply(reader), 20)
        writer.close()
    assert reply.status == 200 and int(reply.body) == STREAM_BYTES
    assert mem["peak"] < 50 * MB


async def test_a_200mb_download_streams_through_without_buffering() -> None:
    async with bulk_gateway() as gw:
        reader, writer = await gw.open()
        with traced_peak() as mem:
            writer.write(b"GET /up HTTP/1.1\r\nHost: gw\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            got = 0
            while got < STREAM_BYTES:
                chunk = await asyncio.wait_for(reader.read(MB), 10)
                assert chunk
                got += len(chunk)
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert got == STREAM_BYTES
    assert mem["peak"] < 50 * MB


async def test_sse_events_pass_through_one_by_one() -> None:
    release = asyncio.Event()

    async def handler(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        event = b"data: one\n\n"
        writer.write(b"%x\r\n%s\r\n" % (len(event), event))
        await writer.drain()
        await asyncio.wait_for(release.wait(), 5)  # event 2 only after the client saw 1
        event = b"data: two\n\n"
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(event), event))

    upstream = await HttpUpstream(handler).start()
    try:
        async with client_gateway(upstream_entities(upstream.port)) as gw:
            reader, writer = await gw.open()
            writer.write(b"GET /up/events HTTP/1.1\r\nHost: gw\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
            first = await asyncio.wait_for(reader.readuntil(b"\n\n\r\n"), 3)
            release.set()
            rest = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 3)
            writer.close()
    finally:
        await upstream.close()
    assert b"text/event-stream" in head
    assert b"data: one" in first and b"two" not in first
    assert b"data: two" in rest


async def test_builtin_sse_stream_is_chunked_and_incremental(gw: ClientGateway) -> None:
    reader, writer = await gw.open()
    writer.write(b"GET /echo/stream?n=3&interval=0.2 HTTP/1.1\r\nHost: gw\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    first = await asyncio.wait_for(reader.readuntil(b"\n\n\r\n"), 1)
    writer.close()
    assert b"transfer-encoding: chunked" in head
    assert b"id: 0" in first and b"id: 1" not in first


async def test_pipelined_request_behind_a_slow_one_is_not_timed_out() -> None:
    """The header timer of a queued request must not cut the answer in progress."""
    async def handler(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        if req.target.endswith("/slow"):
            await asyncio.sleep(0.6)
        writer.write(ok_response(req.target.encode()))

    upstream = await HttpUpstream(handler).start()
    try:
        async with client_gateway(upstream_entities(upstream.port),
                                  limits=Limits(header_timeout=0.3)) as gw:
            raw = await gw.raw(b"GET /up/slow HTTP/1.1\r\nHost: gw\r\n\r\n"
                               b"GET /up/next HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
    finally:
        await upstream.close()
    replies = split_replies(raw)
    assert [(r.status, r.body) for r in replies] == [(200, b"/slow"), (200, b"/next")]

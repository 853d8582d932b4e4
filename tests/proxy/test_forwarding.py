"""Forwarding over real sockets: what the upstream receives and what the client gets back.

Covers request line, path handling (strip, rewrite, service base path), Host,
X-Forwarded-*, hop-by-hop headers both ways, request ids, response framing
(Content-Length, chunked, close-delimited, 204/304, HEAD, 1xx) and large bodies.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway_harness import (
    HttpUpstream,
    RawClient,
    RunningGateway,
    UpstreamRequest,
    http,
    ok_response,
    service,
    start_gateway,
)


@pytest.fixture
async def upstream() -> AsyncIterator[HttpUpstream]:
    up = await HttpUpstream().start()
    yield up
    await up.close()


async def _gateway(services: list[dict[str, Any]], **kw: Any) -> RunningGateway:
    return await start_gateway({"services": services}, **kw)


@pytest.fixture
async def gw_factory() -> AsyncIterator[Any]:
    started: list[RunningGateway] = []

    async def make(services: list[dict[str, Any]], **kw: Any) -> RunningGateway:
        gw = await _gateway(services, **kw)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        await gw.close()


# ---------------------------------------------------------------- request line and paths


@pytest.mark.parametrize(
    ("route", "svc_path", "client_path", "upstream_target"),
    [
        ({"paths": ["/api"], "strip_path": True}, "", "/api/items?x=1&y=%20z", "/items?x=1&y=%20z"),
        ({"paths": ["/api"], "strip_path": True}, "", "/api", "/"),
        ({"paths": ["/api"], "strip_path": False}, "", "/api/items?q=1", "/api/items?q=1"),
        ({"paths": ["/api"], "strip_path": True}, "/base", "/api/items", "/base/items"),
        ({"paths": ["/api"], "strip_path": True}, "/base", "/api", "/base"),
        ({"paths": ["/api"], "strip_path": False}, "/base", "/api/x", "/base/api/x"),
        ({"paths": ["/users/{id}"], "rewrite": "/v2/people/{id}"}, "", "/users/42?full=1",
         "/v2/people/42?full=1"),
        ({"paths": ["/users/{id}"], "rewrite": "/v2/people/{id}"}, "/base", "/users/7",
         "/base/v2/people/7"),
    ],
)
async def test_path_and_query_reach_the_upstream(
    upstream: HttpUpstream, gw_factory: Any, route: dict[str, Any], svc_path: str,
    client_path: str, upstream_target: str,
) -> None:
    gw = await gw_factory([
        {"name": "s", "url": f"http://{upstream.address}{svc_path}",
         "routes": [{"name": "r", **route}]},
    ])
    resp = await http(gw.port, "GET", client_path)
    assert resp.status == 200
    assert upstream.requests[-1].target == upstream_target


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_method_and_body_pass_through(
    upstream: HttpUpstream, gw_factory: Any, method: str
) -> None:
    gw = await gw_factory([service("s", f"http://{upstream.address}")])
    body = b'{"a": 1}' if method in ("POST", "PUT", "PATCH") else None
    resp = await http(gw.port, method, "/s/x", body=body)
    assert resp.status == 200
    seen = upstream.requests[-1]
    assert seen.method == method
    assert seen.body == (body or b"")


async def test_chunked_request_body_is_forwarded(upstream: HttpUpstream, gw_factory: Any) -> None:
    gw = await gw_factory([service("s", f"http://{upstream.address}")])
    client = await RawClient.connect(gw.port)
    await client.send_raw(b"POST /s/up HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n"
                          b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    resp = await client.read_response()
    await client.close()
    assert resp.status == 200
    assert upstream.requests[-1].body == b"hello world"


# ---------------------------------------------------------------- Host


async def test_host_is_the_service_host_unless_preserve_host(
    upstream: HttpUpstream, gw_factory: Any
) -> None:
    gw = await gw_factory([
        service("plain", f"http://{upstream.address}"),
        service("keep", f"http://{upstream.address}", route={"preserve_host": True}),
    ])
    await http(gw.port, "GET", "/plain", host="client.example")
    assert upstream.requests[-1].header_all("host") == [upstream.address]
    await http(gw.port, "GET", "/keep", host="client.example")
    assert upstream.requests[-1].header_all("host") == ["client.example"]


async def test_host_is_the_target_address_for_a_named_upstream(
    upstream: HttpUpstream
) -> None:
    gw = await start_gateway({
        "upstreams": [{"name": "pool", "targets": [{"target": upstream.address}]}],
        "services": [service("s", "http://pool")],
    })
    try:
        await http(gw.port, "GET", "/s", host="client.example")
        assert upstream.requests[-1].header("host") == upstream.address
    finally:
        await gw.close()


# ---------------------------------------------------------------- X-Forwarded-*


async def test_untrusted_client_forwarded_headers_are_replaced(
    upstream: HttpUpstream, gw_factory: Any
) -> None:
    gw = await gw_factory([service("s", f"http://{upstream.address}")])
    await http(gw.port, "GET", "/s", host="shop.example", headers=[
        (b"X-Forwarded-For", b"6.6.6.6"), (b"X-Forwarded-Proto", b"https"),
        (b"X-Forwarded-Host", b"evil.example"),
    ])
    seen = upstream.requests[-1]
    assert seen.header_all("x-forwarded-for") == ["127.0.0.1"]
    assert seen.header_all("x-forwarded-proto") == ["http"]
    assert seen.header_all("x-forwarded-host") == ["shop.example"]


async def test_trusted_proxy_forwarded_headers_are_kept_and_appended(
    upstream: HttpUpstream, gw_factory: Any
) -> None:
    gw = await gw_factory([service("s", f"http://{upstream.address}")],
                          trusted_proxies=["127.0.0.0/8"])
    await http(gw.port, "GET", "/s", host="inner", headers=[
        (b"X-Forwarded-For", b"203.0.113.9"), (b"X-Forwarded-Proto", b"https"),
        (b"X-Forwarded-Host", b"shop.example"),
    ])
    seen = upstream.requests[-1]
    assert seen.header_all("x-forwarded-for") == ["203.0.113.9, 127.0.0.1"]
    assert seen.header_all("x-forwarded-proto") == ["https"]
    assert seen.header_all("x-forwarded-host") == ["shop.example"]


async def test_trusted_proxy_without_forwarded_headers(
    upstream: HttpUpstream, gw_factory: Any
) -> None:
    gw = await gw_factory([service("s", f"http://{upstream.address}")],
                          trusted_proxies=["127.0.0.1/32"])
    await http(gw.port, "GET", "/s", host="h.example")
    seen = upstream.requests[-1]
    assert seen.header_all("x-forwarded-for") == ["127.0.0.1"]
    assert seen.header_all("x-forwarded-host") == ["h.example"]


# ---------------------------------------------------------------- hop-by-hop, request id


async def test_hop_by_hop_request_headers_are_removed(
    upstream: HttpUpstream, gw_factory: Any
) -> None:
    gw = await gw_factory([service("s", f"http://{upstream.address}")])
    await http(gw.port, "GET", "/s", headers=[
        (b"Connection", b"keep-alive, X-Secret-Hop"), (b"Keep-Alive", b"timeout=5"),
        (b"TE", b"trailers"), (b"Trailer", b"x-t"), (b"Proxy-Authorization", b"Basic eA=="),
        (b"Proxy-Connection", b"keep-alive"), (b"X-Secret-Hop", b"1"), (b"X-End", b"kept"),
    ])
    seen = upstream.requests[-1]
    names = {n for n, _ in seen.headers}
    for hop in (b"keep-alive", b"te", b"trailer", b"proxy-authorization",
                b"proxy-connection", b"x-secret-hop", b"upgrade"):
        assert hop not in names
    assert seen.header_all("connection") in ([], ["keep-alive"])
    assert seen.header("x-end") == "kept"


async def test_hop_by_hop_response_headers_are_removed(gw_factory: Any) -> None:
    async def handler(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(ok_response(b"hi", headers=[
            (b"Connection", b"keep-alive, X-Up-Hop"), (b"Keep-Alive", b"timeout=5"),
            (b"X-Up-Hop", b"1"), (b"Proxy-Authenticate", b"Basic"), (b"Trailer", b"x"),
            (b"Upgrade", b"h2c"), (b"X-Kept", b"yes"),
        ]))

    up = await HttpUpstream(handler).start()
    try:
        gw = await gw_factory([service("s", f"http://{up.address}")])
        resp = await http(gw.port, "GET", "/s")
        names = {n for n, _ in resp.headers}
        for hop in (b"keep-alive", b"x-up-hop", b"proxy-authenticate", b"trailer", b"upgrade"):
            assert hop not in names
        assert resp.header("x-kept") == "yes"
        assert resp.body == b"hi"
    finally:
        await up.close()


async def test_request_id_is_sent_upstream_and_returned(
    upstream: HttpUpstream, gw_factory: Any
) -> None:
    gw = await gw_factory([service("s", f"http://{upstream.address}")])
    resp = await http(gw.port, "GET", "/s")
    generated = resp.header("x-request-id")
    assert generated and len(generated) == 32
    assert upstream.requests[-1].header_all("x-request-id") == [generated]
    resp = await http(gw.port, "GET", "/s", headers=[(b"X-Request-Id", b"abc-123")])
    assert resp.header_all("x-request-id") == ["abc-123"]
    assert upstream.requests[-1].header_all("x-request-id") == ["abc-123"]


async def test_status_and_headers_pass_through_with_multiple_set_cookie(
    gw_factory: Any,
) -> None:
    async def handler(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(ok_response(b"made", 201, headers=[
            (b"Set-Cookie", b"a=1; Path=/"), (b"Set-Cookie", b"b=2; HttpOnly"),
            (b"Location", b"/things/9"), (b"X-Request-Id", b"upstream-own-id"),
        ]))

    up = await HttpUpstream(handler).start()
    try:
        gw = await gw_factory([service("s", f"http://{up.address}")])
        resp = await http(gw.port, "POST", "/s", body=b"x")
        assert resp.status == 201
        assert resp.header_all("set-cookie") == ["a=1; Path=/", "b=2; HttpOnly"]
        assert resp.header("location") == "/things/9"
        assert len(resp.header_all("x-request-id")) == 1
        assert resp.body == b"made"
    finally:
        await up.close()


# ---------------------------------------------------------------- response framing


def _framing_handler(kind: str) -> Any:
    async def handler(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        if kind == "chunked":
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                         b"3\r\nabc\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)
            writer.write(b"4\r\ndefg\r\n0\r\n\r\n")
        elif kind == "close":
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil-")
            await writer.drain()
            await asyncio.sleep(0.01)
            writer.write(b"the-end")
            writer.close()
        elif kind == "204":
            writer.write(b"HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n")
        elif kind == "304":
            writer.write(b"HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\n\r\n")
        elif kind == "continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
            writer.write(ok_response(b"after-continue"))
        elif kind == "head":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n")
    return handler


@pytest.mark.parametrize(
    ("kind", "status", "body"),
    [("chunked", 200, b"abcdefg"), ("close", 200, b"until-the-end"), ("204", 204, b""),
     ("304", 304, b""), ("continue", 200, b"after-continue")],
)
async def test_upstream_framings_reach_the_client_intact(
    gw_factory: Any, kind: str, status: int, body: bytes
) -> None:
    up = await HttpUpstream(_framing_handler(kind)).start()
    try:
        gw = await gw_factory([service("s", f"http://{up.address}")])
        client = await RawClient.connect(gw.port)
        for _ in range(2):  # the client connection stays usable afterwards
            resp = await client.request("GET", "/s")
            assert (resp.status, resp.body, resp.complete) == (status, body, True)
        await client.close()
    finally:
        await up.close()


async def test_head_response_has_length_but_no_body(gw_factory: Any) -> None:
    up = await HttpUpstream(_framing_handler("head")).start()
    try:
        gw = await gw_factory([service("s", f"http://{up.address}")])
        client = await RawClient.connect(gw.port)
        resp = await client.request("HEAD", "/s")
        assert resp.status == 200
        assert resp.header("content-length") == "1234"
        assert resp.body == b""
        # the next response on the same connection parses cleanly
        resp = await client.request("HEAD", "/s")
        assert resp.status == 200 and resp.complete
        await client.close()
        assert up.accepted == 1  # the upstream connection was reused after HEAD
    finally:
        await up.close()


async def test_large_bodies_stream_both_ways(gw_factory: Any) -> None:
    size = 8 * 1024 * 1024

    async def handler(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        block = bytes(range(256)) * 256
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()

    up = await HttpUpstream(handler).start()
    try:
        gw = await gw_factory([service("s", f"http://{up.address}")])
        upload = b"u" * (3 * 1024 * 1024)
        resp = await http(gw.port, "POST", "/s", body=upload)
        assert resp.status == 200 and resp.complete
        assert len(resp.body) == size
        assert resp.body[:512] == bytes(range(256)) * 2
        assert up.requests[-1].body == upload
    finally:
        await up.close()


# ---------------------------------------------------------------- hostile clients and upstreams


async def test_multiple_forwarded_for_headers_keep_their_order(
    upstream: HttpUpstream, gw_factory: Any
) -> None:
    gw = await gw_factory([service("s", f"http://{upstream.address}")],
                          trusted_proxies=["127.0.0.1/32"])
    await http(gw.port, "GET", "/s", headers=[
        (b"X-Forwarded-For", b"1.1.1.1, 2.2.2.2"), (b"X-Forwarded-For", b"3.3.3.3"),
    ])
    assert upstream.requests[-1].header_all("x-forwarded-for") == [
        "1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1"]


async def test_pipelined_requests_are_answered_in_order(
    upstream: HttpUpstream, gw_factory: Any
) -> None:
    gw = await gw_factory([service("s", f"http://{upstream.address}")])
    client = await RawClient.connect(gw.port)
    await client.send_raw(b"".join(
        b"GET /s/%d HTTP/1.1\r\nhost: a\r\n\r\n" % i for i in range(5)))
    bodies = [(await client.read_response()).body for _ in range(5)]
    await client.close()
    assert bodies == [b"GET /%d" % i for i in range(5)]


async def test_expect_100_continue(upstream: HttpUpstream, gw_factory: Any) -> None:
    gw = await gw_factory([service("s", f"http://{upstream.address}")])
    client = await RawClient.connect(gw.port)
    await client.send_raw(b"PUT /s/doc HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\n"
                          b"expect: 100-continue\r\n\r\n")
    interim = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), 2)
    assert interim.startswith(b"HTTP/1.1 100")
    await client.send_raw(b"body")
    resp = await client.read_response()
    await client.close()
    assert resp.status == 200
    assert upstream.requests[-1].body == b"body"
    assert upstream.requests[-1].header("expect") is None


async def test_client_leaving_early_closes_the_upstream_connection(gw_factory: Any) -> None:
    arrived = asyncio.Event()

    async def slow(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        if req.target == "/slow":
            arrived.set()
            await asyncio.sleep(0.3)
        writer.write(ok_response(b"done"))

    up = await HttpUpstream(slow).start()
    try:
        gw = await gw_factory([service("s", f"http://{up.address}")])
        client = await RawClient.connect(gw.port)
        await client.send_raw(b"GET /s/slow HTTP/1.1\r\nhost: a\r\n\r\n")
        await arrived.wait()
        sock = client.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.writer.transport.abort()  # a reset, not a half-close
        await asyncio.sleep(0.5)
        assert not up.open_writers  # the half-done upstream connection was not pooled
        resp = await http(gw.port, "GET", "/s/fast")
        assert (resp.status, resp.body) == (200, b"done")
    finally:
        await up.close()


async def test_upgrade_request_answered_without_101_ends_the_connection(
    upstream: HttpUpstream, gw_factory: Any
) -> None:
    """The client asked to switch protocols and the upstream said no: the connection's
    bytes after the head are not HTTP we parsed, so it must close, not hang."""
    gw = await gw_factory([service("s", f"http://{upstream.address}")])
    client = await RawClient.connect(gw.port)
    resp = await client.request("GET", "/s/h2", headers=[
        (b"Connection", b"Upgrade, HTTP2-Settings"), (b"Upgrade", b"h2c"),
        (b"HTTP2-Settings", b"AAMAAABkAAQCAAAAAAIAAAAA")])
    assert (resp.status, resp.body) == (200, b"GET /h2")
    nxt = await asyncio.wait_for(client.request("GET", "/s/next"), 2)
    await client.close()
    assert nxt.status == 200 or not nxt.complete


async def test_101_to_a_plain_request_is_502(gw_factory: Any) -> None:
    async def switches(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                     b"connection: upgrade\r\n\r\n")

    up = await HttpUpstream(switches).start()
    try:
        gw = await gw_factory([service("s", f"http://{up.address}")])
        resp = await asyncio.wait_for(http(gw.port, "GET", "/s"), 2)
        assert resp.status == 502
    finally:
        await up.close()

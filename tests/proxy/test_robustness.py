"""Hostile input on the client side: request smuggling shapes, malformed requests, fuzz.

Each malformed request gets a 4xx/505 JSON error (with its request id) and a closed
connection, and the server keeps serving: a fresh connection is answered correctly
afterwards.  Nothing may escape into the event loop's exception handler.  The fuzz
loop and a sweep of the whole table also run on uvloop, the product's loop.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator

import pytest
import uvloop
from client_harness import ClientGateway, client_gateway, read_until_close

from campusgate.config.model import Limits


@pytest.fixture(scope="module")
def limits() -> Limits:
    return Limits(max_url_bytes=1024, max_header_bytes=4096, max_headers=20,
                  max_body_bytes=10_000, header_timeout=2, body_timeout=2)


@pytest.fixture
async def gw(limits: Limits) -> AsyncIterator[ClientGateway]:
    async with client_gateway(limits=limits) as gateway:
        yield gateway
        assert await gateway.still_serving()
    assert not gateway.loop_errors, gateway.loop_errors


H = b"Host: gw\r\n"
POST = b"POST /echo HTTP/1.1\r\n" + H

#: (name, bytes, expected status).  Every one closes the connection after answering.
MALFORMED: list[tuple[str, bytes, int]] = [
    # --- framing conflicts (request smuggling)
    ("cl_and_te", POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400),
    ("te_and_cl", POST + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
     400),
    ("two_different_cl", POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("two_equal_cl", POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
    ("cl_list", POST + b"Content-Length: 5, 5\r\n\r\nhello", 400),
    ("cl_plus", POST + b"Content-Length: +5\r\n\r\nhello", 400),
    ("cl_two_numbers", POST + b"Content-Length: 5 5\r\n\r\nhello", 400),
    ("cl_negative", POST + b"Content-Length: -1\r\n\r\nhello", 400),
    ("cl_hex", POST + b"Content-Length: 0x5\r\n\r\nhello", 400),
    ("cl_empty", POST + b"Content-Length: \r\n\r\nhello", 400),
    ("cl_huge", POST + b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
    ("te_chunked_identity", POST + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
     400),
    ("te_identity_chunked", POST + b"Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n",
     400),
    ("te_xchunked", POST + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    ("te_twice", POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400),
    ("te_space_name", POST + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    ("te_in_http10", b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400),
    # --- chunk framing
    ("chunk_size_letters", POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
     400),
    ("chunk_size_negative", POST + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
     400),
    ("chunk_size_overflow", POST + b"Transfer-Encoding: chunked\r\n\r\n"
     b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk_size_0x", POST + b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk_data_too_long", POST + b"Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
     400),
    ("chunk_missing_crlf", POST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
     400),
    ("chunk_lf_only", POST + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n", 400),
    ("chunked_too_large", POST + b"Transfer-Encoding: chunked\r\n\r\n"
     + b"1000\r\n" + b"x" * 4096 + b"\r\n" + b"1000\r\n" + b"x" * 4096 + b"\r\n"
     + b"1000\r\n" + b"x" * 4096 + b"\r\n0\r\n\r\n", 413),
    ("cl_too_large", POST + b"Content-Length: 10001\r\n\r\n", 413),
    # --- line endings, folding, bad bytes
    ("bare_lf_everywhere", b"GET /echo HTTP/1.1\nHost: gw\n\n", 400),
    ("bare_lf_in_headers", b"GET /echo HTTP/1.1\r\nHost: gw\nX-A: b\r\n\r\n", 400),
    ("bare_cr", b"GET /echo HTTP/1.1\r\nHost: gw\r\nX-A: b\rc\r\n\r\n", 400),
    ("obs_fold", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n", 400),
    ("nul_in_header", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: b\x00c\r\n\r\n", 400),
    ("nul_in_url", b"GET /ec\x00ho HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("space_before_colon", b"GET /echo HTTP/1.1\r\n" + H + b"X-A : b\r\n\r\n", 400),
    ("header_without_colon", b"GET /echo HTTP/1.1\r\n" + H + b"justaname\r\n\r\n", 400),
    ("empty_header_name", b"GET /echo HTTP/1.1\r\n" + H + b": v\r\n\r\n", 400),
    ("space_in_url", b"GET /ec ho HTTP/1.1\r\n" + H + b"\r\n", 400),
    # --- request line
    ("invalid_method_chars", b"G(T /echo HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("unknown_method", b"BREW /echo HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("lowercase_method", b"get /echo HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("http2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    ("http_2_0_line", b"GET /echo HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("http_0_9", b"GET /echo\r\n\r\n", 505),
    ("bad_version", b"GET /echo HTTP/1.x\r\n" + H + b"\r\n", 400),
    ("tls_on_plain_port", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32), 400),
    ("absolute_form_without_host", b"GET http:///echo HTTP/1.1\r\n" + H + b"\r\n", 400),
    # --- host and limits
    ("no_host_in_11", b"GET /echo HTTP/1.1\r\n\r\n", 400),
    ("two_hosts", b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("expect_unknown", POST + b"Expect: teapot\r\nContent-Length: 1\r\n\r\nx", 400),
    ("url_too_long", b"GET /" + b"a" * 1100 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("header_too_large", b"GET /echo HTTP/1.1\r\n" + H + b"X: " + b"a" * 5000 + b"\r\n\r\n",
     431),
    ("too_many_headers", b"GET /echo HTTP/1.1\r\n" + H
     + b"".join(b"X-%d: v\r\n" % i for i in range(25)) + b"\r\n", 431),
]


@pytest.mark.parametrize(("data", "status"), [pytest.param(d, s, id=n) for n, d, s in MALFORMED])
async def test_malformed_request_gets_json_error_and_close(
        gw: ClientGateway, data: bytes, status: int) -> None:
    raw = await gw.raw(data, wait=4)
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, raw[:200]
    assert head.startswith(b"HTTP/1.1 %d " % status), head
    assert b"\r\nconnection: close" in head.lower()
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "request_id"}
    assert b"\r\nx-request-id: " + error["request_id"].encode() in head.lower()
    assert "Traceback" not in error["message"]


async def test_a_smuggled_request_is_never_served(gw: ClientGateway) -> None:
    """CL.TE: a front end using Content-Length would see one request, a back end two."""
    smuggled = (POST + b"Content-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n")
    raw = await gw.raw(smuggled, wait=3)
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert b"smuggled" not in raw
    assert raw.count(b"HTTP/1.1 ") == 1


async def test_chunk_extension_abuse_is_cut_off(gw: ClientGateway) -> None:
    reader, writer = await gw.open()
    writer.write(POST + b"Transfer-Encoding: chunked\r\n\r\n1;ext=")
    for _ in range(10):  # 40 KiB of extension on a one-byte chunk, in several reads
        writer.write(b"a" * 4096)
        await writer.drain()
        await asyncio.sleep(0.01)
    raw = await read_until_close(reader, 3)
    writer.close()
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert b"chunk" in raw


async def test_modest_chunk_extensions_are_accepted(gw: ClientGateway) -> None:
    reply = await gw.request(POST + b"Transfer-Encoding: chunked\r\n\r\n"
                             b"5;name=value;quoted=\"x y\"\r\nhello\r\n0\r\n\r\n")
    assert reply.status == 200 and reply.json()["body"] == "hello"


async def test_leading_empty_lines_are_tolerated(gw: ClientGateway) -> None:
    # RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request
    reply = await gw.request(b"\r\n\r\nGET /echo HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    assert reply.status == 200


VALID = [
    b"GET /echo/a?x=1 HTTP/1.1\r\nHost: gw\r\nUser-Agent: fuzz\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: gw\r\n\r\nGET /echo/2 HTTP/1.1\r\nHost: gw\r\n\r\n",
    b"HEAD /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
]
ALPHABET = b"\r\n :;,\x00\x7f\xff\t-0123456789abcdefHTTP/1.1GETPOSTchunkedContent-Length"


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip a byte
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:  # insert bytes
            buf[pos:pos] = bytes(rng.choice(ALPHABET) for _ in range(rng.randint(1, 8)))
        elif op == 2 and buf:  # delete a span
            del buf[pos:pos + rng.randint(1, 8)]
        else:  # duplicate a span
            buf[pos:pos] = buf[pos:pos + rng.randint(1, 40)]
    return bytes(buf)


def test_fuzzed_requests_never_break_the_server_on_uvloop() -> None:
    uvloop.run(_fuzz())


def test_every_malformed_request_on_uvloop(limits: Limits) -> None:
    async def sweep() -> None:
        async with client_gateway(limits=limits) as gw:
            answers = await asyncio.gather(*(gw.raw(d, wait=4) for _, d, _ in MALFORMED))
            for (name, _, status), raw in zip(MALFORMED, answers, strict=True):
                assert raw.startswith(b"HTTP/1.1 %d " % status), name
            assert await gw.still_serving()
        assert not gw.loop_errors, gw.loop_errors

    uvloop.run(sweep())


async def _fuzz() -> None:
    rng = random.Random(20261128)
    limits = Limits(max_body_bytes=10_000, header_timeout=0.3, body_timeout=0.3,
                    keepalive_timeout=0.3)
    async with client_gateway(limits=limits) as gw:

        async def one(data: bytes) -> bytes:
            reader, writer = await gw.open()
            writer.write(data)
            raw = await read_until_close(reader, 2)
            writer.close()
            return raw

        cases = [mutate(rng, rng.choice(VALID)) for _ in range(300)]
        for start in range(0, len(cases), 30):  # 30 connections at a time
            answers = await asyncio.gather(*(one(c) for c in cases[start:start + 30]))
            for raw in answers:
                assert raw == b"" or raw.startswith(b"HTTP/1.1 "), raw[:100]
                assert b"Traceback" not in raw
                assert b" 500 " not in raw.split(b"\r\n", 1)[0], raw[:300]
        assert await gw.still_serving()
        await asyncio.sleep(0.05)
    assert not gw.loop_errors, gw.loop_errors

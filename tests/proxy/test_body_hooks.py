"""Body phases (proxy/bodies.py): buffering only where a plugin asks, over real sockets.

Small test plugins exercise each hook against an HTTP upstream and the built-in
(ASGI) echo service: request bodies read whole and rewritten, streamed bodies
counted and cut, response bodies gathered and rewritten, limits, and which requests
may still take the callback-only path.
"""

from __future__ import annotations

import asyncio
import json
import logging
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

from campusgate.plugins.base import Plugin
from campusgate.plugins.registry import plugin_classes
from campusgate.proxy.bodies import BodyStep
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext, header_value
from campusgate.proxy.gateway import Gateway


class Shout(Plugin):
    """Upper-cases request bodies of up to 64 bytes; answers 422 to ``refuse``."""

    name = "test-shout"
    body_limit = 64

    def request_body(self, ctx: RequestContext, body: bytes) -> bytes | LocalResponse:
        if body == b"refuse":
            return LocalResponse.error(422, "refused", "no", ctx.request_id)
        return body.upper()


class Meter(Plugin):
    """Cuts a streamed request body after 10 bytes."""

    name = "test-meter"

    def request_stream(self, ctx: RequestContext, received: int) -> LocalResponse | None:
        ctx.vars.setdefault("seen", []).append(received)
        if received > 10:
            return LocalResponse.error(413, "too_big", "over 10", ctx.request_id)
        return None


class Reverse(Plugin):
    """Reverses text/plain response bodies of up to 64 bytes."""

    name = "test-reverse"
    body_limit = 64

    def wants_response_body(self, ctx: RequestContext, status: int,
                            headers: HeaderList) -> bool:
        return header_value(headers, b"content-type") == b"text/plain"

    def response_body(self, ctx: RequestContext, status: int, headers: HeaderList,
                      body: bytes) -> bytes:
        headers.append((b"x-reversed", b"%d" % len(body)))
        return body[::-1]


class Tap(Plugin):
    """Watches streamed request bodies (``request_tap``) and the first bytes of
    responses over its limit, declared or not (``taps_overflow``)."""

    name = "test-tap"
    body_limit = 16
    taps_overflow = True

    def request_tap(self, ctx: RequestContext, data: bytes) -> None:
        ctx.vars.setdefault("tapped", []).append(data)

    def wants_response_body(self, ctx: RequestContext, status: int,
                            headers: HeaderList) -> bool:
        return True

    def response_body(self, ctx: RequestContext, status: int, headers: HeaderList,
                      body: bytes) -> bytes:
        ctx.vars["whole"] = body
        return body

    def response_overflow(self, ctx: RequestContext, status: int, headers: HeaderList,
                          prefix: bytes, size: int | None = None) -> None:
        ctx.vars["overflow"] = (prefix, size)


@pytest.fixture(autouse=True)
def test_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in (Shout, Meter, Reverse, Tap):
        monkeypatch.setitem(plugin_classes(), cls.name, cls)


@pytest.fixture
def fast_count(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    decisions: list[bool] = []
    original = Gateway.try_fast

    def counting(self: Gateway, conn: Any, req: Any) -> bool:
        accepted = original(self, conn, req)
        decisions.append(accepted)
        return accepted

    monkeypatch.setattr(Gateway, "try_fast", counting)
    return decisions


async def text_answer(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
    """Chunked text/plain: ``hello`` + the request body."""
    body = b"hello" + req.body
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                 b"transfer-encoding: chunked\r\n\r\n"
                 + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))


@pytest.fixture
async def upstream() -> AsyncIterator[HttpUpstream]:
    up = await HttpUpstream(text_answer).start()
    yield up
    await up.close()


async def gateway(url: str, *plugins: str) -> RunningGateway:
    return await start_gateway({"services": [
        service("s", url, plugins=[{"name": p} for p in plugins])]})


def chunked(*parts: bytes, end: bool = True) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    return body + (b"0\r\n\r\n" if end else b"")


async def post_chunked(port: int, *parts: bytes, end: bool = True) -> Any:
    client = await RawClient.connect(port)
    try:
        await client.send_raw(b"POST /s HTTP/1.1\r\nhost: gw.test\r\n"
                              b"transfer-encoding: chunked\r\n\r\n" + chunked(*parts, end=end))
        return await client.read_response()
    finally:
        await client.close()


# ---------------------------------------------------------------- compile time


async def test_only_chains_with_body_plugins_get_a_body_step(upstream: HttpUpstream) -> None:
    gw = await start_gateway({"services": [
        service("plain", f"http://{upstream.address}", plugins=[{"name": "request-id"}]),
        service("body", f"http://{upstream.address}", plugins=[{"name": "test-shout"}]),
    ]})
    try:
        routes = {r.name: r for r in (m.payload for m in (
            gw.snapshot.router.match("GET", "gw.test", p, [], "") for p in ("/plain", "/body"))
            if m is not None)}
        assert not any(isinstance(p, BodyStep) for p in routes["plain-r"].access)
        assert isinstance(routes["body-r"].access[-1], BodyStep)
    finally:
        await gw.close()


# ---------------------------------------------------------------- request bodies


async def test_request_body_is_rewritten_with_its_own_length(upstream: HttpUpstream) -> None:
    gw = await gateway(f"http://{upstream.address}", "test-shout")
    try:
        fixed = await http(gw.port, "POST", "/s", body=b"quiet words")
        streamed = await post_chunked(gw.port, b"quiet ", b"chunks")
    finally:
        await gw.close()
    assert (fixed.status, streamed.status) == (200, 200)
    first, second = upstream.requests
    assert first.body == b"QUIET WORDS"
    assert first.header("content-length") == "11"
    assert second.body == b"QUIET CHUNKS"
    assert second.header("content-length") == "12"
    assert second.header("transfer-encoding") is None


async def test_request_body_over_the_plugin_limit_is_413(upstream: HttpUpstream) -> None:
    gw = await gateway(f"http://{upstream.address}", "test-shout")
    try:
        declared = await http(gw.port, "POST", "/s", body=b"x" * 65)
        streamed = await post_chunked(gw.port, b"x" * 40, b"y" * 40)
    finally:
        await gw.close()
    assert (declared.status, streamed.status) == (413, 413)
    assert json.loads(declared.body)["error"]["code"] == "payload_too_large"
    assert upstream.requests == []


async def test_a_plugin_may_answer_instead_of_forwarding_the_body(
        upstream: HttpUpstream) -> None:
    gw = await gateway(f"http://{upstream.address}", "test-shout")
    try:
        answer = await http(gw.port, "POST", "/s", body=b"refuse")
    finally:
        await gw.close()
    assert answer.status == 422
    assert answer.header("x-request-id")
    assert upstream.requests == []


async def test_a_streamed_body_is_counted_and_cut_at_the_limit(upstream: HttpUpstream) -> None:
    gw = await gateway(f"http://{upstream.address}", "test-meter")
    try:
        small = await post_chunked(gw.port, b"12345", b"67890")
        # over the limit and never finished: the client still gets its answer
        cut = await post_chunked(gw.port, b"12345", b"678901", end=False)
    finally:
        await gw.close()
    assert small.status == 200
    assert small.body == b"hello1234567890"
    assert cut.status == 413
    assert json.loads(cut.body)["error"]["code"] == "too_big"
    assert cut.header("connection") == "close"
    assert len(upstream.requests) == 1  # the cut upload never completed upstream


async def test_bodyless_requests_on_request_body_routes_keep_the_callback_path(
        upstream: HttpUpstream, fast_count: list[bool]) -> None:
    gw = await gateway(f"http://{upstream.address}", "test-shout", "test-meter")
    client = await RawClient.connect(gw.port)
    try:
        answers = [await client.request("GET", "/s") for _ in range(3)]
    finally:
        await client.close()
        await gw.close()
    assert [a.status for a in answers] == [200, 200, 200]
    assert fast_count == [False, True, True]


# ---------------------------------------------------------------- response bodies


async def test_response_body_is_gathered_and_sent_with_a_content_length(
        upstream: HttpUpstream, fast_count: list[bool]) -> None:
    gw = await gateway(f"http://{upstream.address}", "test-reverse")
    client = await RawClient.connect(gw.port)
    try:
        answers = [await client.request("POST", "/s", body=b" world") for _ in range(2)]
        answers.append(await client.request("GET", "/s"))
    finally:
        await client.close()
        await gw.close()
    first = answers[0]
    assert first.body == b"dlrow olleh"
    assert first.header("content-length") == "11"
    assert first.header("transfer-encoding") is None
    assert first.header("x-reversed") == "11"
    assert first.header("x-request-id")
    assert answers[2].body == b"olleh"
    assert upstream.accepted == 1  # the upstream connection went back to the pool
    assert fast_count == [False]  # the GET: response bodies need the task path


async def test_a_response_over_the_limit_streams_through_untouched(
        caplog: pytest.LogCaptureFixture) -> None:
    big = b"z" * 100

    async def large(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        if req.target.endswith("chunked"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                         b"transfer-encoding: chunked\r\n\r\n" + chunked(*[big[:10]] * 10))
        else:
            writer.write(ok_response(big, headers=[(b"content-type", b"text/plain")]))

    up = await HttpUpstream(large).start()
    gw = await gateway(f"http://{up.address}", "test-reverse")
    try:
        with caplog.at_level(logging.WARNING, "campusgate.proxy"):
            declared = await http(gw.port, "GET", "/s/declared")
            streamed = await http(gw.port, "GET", "/s/chunked")
    finally:
        await gw.close()
        await up.close()
    assert declared.body == big and declared.complete
    assert streamed.body == big and streamed.complete
    assert declared.header("x-reversed") is None
    warnings = [r for r in caplog.records if "test-reverse" in r.getMessage()]
    assert len(warnings) == 2


@pytest.mark.parametrize("url", ["upstream", "builtin://echo"])
async def test_a_streamed_body_is_shown_to_the_taps_as_it_goes(
        upstream: HttpUpstream, url: str) -> None:
    """``request_tap`` sees each chunk of a body that streams on (to an HTTP upstream
    or an in-process app); a body held whole for ``request_body`` is not shown."""
    target = f"http://{upstream.address}" if url == "upstream" else url
    gw = await gateway(target, "test-tap")
    held = await gateway(target, "test-tap", "test-shout")
    finished, finished_held = gw.finished(), held.finished()
    try:
        answer = await post_chunked(gw.port, b"12345", b"678901")
        shouted = await http(held.port, "POST", "/s", body=b"abc")
    finally:
        await gw.close()
        await held.close()
    assert answer.status == 200 and shouted.status == 200
    assert b"".join(finished[0].vars["tapped"]) == b"12345678901"
    assert "tapped" not in finished_held[0].vars


async def test_a_tapping_plugin_gets_the_first_bytes_of_a_declared_response() -> None:
    """``taps_overflow``: a response over the limit with a Content-Length is gathered
    up to the limit, its first bytes and size given to the plugin, and streamed on
    whole (a plugin that does not tap lets it stream at once: the test above)."""
    big = bytes(range(97, 123)) * 4000

    async def large(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        whole = ok_response(big, headers=[(b"content-type", b"text/plain")])
        writer.write(whole[:-len(big) + 100])  # the head and 100 bytes, then a pause
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(whole[-len(big) + 100:])

    up = await HttpUpstream(large).start()
    gw = await gateway(f"http://{up.address}", "test-tap")
    finished = gw.finished()
    try:
        answer = await http(gw.port, "GET", "/s")
    finally:
        await gw.close()
        await up.close()
    assert answer.body == big and answer.header("content-length") == str(len(big))
    assert finished[0].vars["overflow"] == (big[:16], len(big))
    assert "whole" not in finished[0].vars


async def test_responses_the_plugin_does_not_want_stream(upstream: HttpUpstream) -> None:
    async def html(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(ok_response(b"<p>hi</p>", headers=[(b"content-type", b"text/html")]))

    up = await HttpUpstream(html).start()
    gw = await gateway(f"http://{up.address}", "test-reverse")
    try:
        answer = await http(gw.port, "GET", "/s")
        head = await http(gw.port, "HEAD", "/s")
    finally:
        await gw.close()
        await up.close()
    assert answer.body == b"<p>hi</p>"
    assert answer.header("x-reversed") is None
    assert head.status == 200 and head.header("x-reversed") is None


async def test_an_upstream_failing_while_the_body_is_gathered_gives_a_502() -> None:
    async def breaks(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                     b"content-length: 50\r\n\r\nonly part")
        await writer.drain()
        writer.close()

    up = await HttpUpstream(breaks).start()
    gw = await gateway(f"http://{up.address}", "test-reverse")
    try:
        answer = await http(gw.port, "GET", "/s")
    finally:
        await gw.close()
        await up.close()
    assert answer.status == 502  # not a cut: nothing had been sent yet
    assert "broke off" in json.loads(answer.body)["error"]["message"]


# ---------------------------------------------------------------- the ASGI backend


async def test_asgi_backend_runs_the_body_phases() -> None:
    gw = await gateway("builtin://echo", "test-shout")
    try:
        answer = await http(gw.port, "POST", "/s", body=b"to the app")
        refused = await http(gw.port, "POST", "/s", body=b"refuse")
    finally:
        await gw.close()
    assert json.loads(answer.body)["body"] == "TO THE APP"
    assert refused.status == 422


async def test_asgi_backend_cuts_a_streamed_body_and_rewrites_responses(
        monkeypatch: pytest.MonkeyPatch) -> None:
    class ReverseJson(Reverse):
        name = "test-reverse-json"
        body_limit = 4096

        def wants_response_body(self, ctx: RequestContext, status: int,
                                headers: HeaderList) -> bool:
            return True

    monkeypatch.setitem(plugin_classes(), ReverseJson.name, ReverseJson)
    gw = await gateway("builtin://echo", "test-meter", "test-reverse-json")
    try:
        cut = await post_chunked(gw.port, b"12345", b"678901", end=False)
        answer = await http(gw.port, "GET", "/s?x=1")
    finally:
        await gw.close()
    assert cut.status == 413
    assert json.loads(answer.body[::-1])["query"] == "x=1"
    assert answer.header("content-length") == str(len(answer.body))


# ---------------------------------------------------------------- consumer plans


async def test_body_plugins_of_a_consumer_apply_after_authentication(
        upstream: HttpUpstream, fast_count: list[bool]) -> None:
    key = "k-alice-0123456789"
    gw = await start_gateway({
        "services": [service("s", f"http://{upstream.address}",
                             plugins=[{"name": "key-auth"}])],
        "consumers": [{"name": "alice", "plugins": [{"name": "test-shout"},
                                                    {"name": "test-reverse"}],
                       "credentials": [{"type": "key-auth", "key": key}]},
                      {"name": "bob",
                       "credentials": [{"type": "key-auth", "key": "k-bob-0123456789"}]}]})
    client = await RawClient.connect(gw.port)
    try:
        posted = await client.request("POST", "/s", [(b"apikey", key.encode())], b" loud")
        gets = [await client.request("GET", "/s", [(b"apikey", key.encode())])
                for _ in range(2)]
        bob = await client.request("GET", "/s", [(b"apikey", b"k-bob-0123456789")])
    finally:
        await client.close()
        await gw.close()
    assert upstream.requests[0].body == b" LOUD"
    assert posted.body == b"DUOL olleh"
    assert [g.body for g in gets] == [b"olleh", b"olleh"]
    assert bob.body == b"hello"  # bob's requests have no body plugins
    # alice's GETs are handed to the task path by her plan's body step; bob's is fast
    assert fast_count == [False, False, True]

"""log-bodies: which bodies are captured, masked, redacted and cut; and through the
gateway, that capturing changes nothing of what is forwarded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from gateway_harness import (
    HttpUpstream,
    Response,
    UpstreamRequest,
    http,
    ok_response,
    service,
    start_gateway,
)
from pydantic import ValidationError

from campusgate.plugins.log_bodies import BODIES, LogBodiesPlugin
from campusgate.plugins.registry import build_plugin
from campusgate.proxy.context import HeaderList, RequestContext

JSON: HeaderList = [(b"content-type", b"application/json; charset=utf-8")]


def plugin(**config: Any) -> LogBodiesPlugin:
    made = build_plugin("log-bodies", config)
    assert isinstance(made, LogBodiesPlugin)
    return made


def ctx(headers: HeaderList) -> RequestContext:
    return RequestContext("POST", "/x", "", headers, "127.0.0.1", "http", "h", "rid")


def test_json_fields_masked_personal_data_redacted() -> None:
    body = json.dumps({"user": "amy@school.edu", "Password": "hunter2",
                       "nested": [{"access-token": "abc", "phone": "(415) 555-2671"}],
                       "usage": {"input_tokens": 3}, "note": "caf\u00e9"}).encode()
    out = json.loads(plugin().capture(body))
    assert out == {"user": "[email]", "Password": "***",
                   "nested": [{"access-token": "***", "phone": "[phone]"}],
                   "usage": {"input_tokens": 3}, "note": "caf\u00e9"}


def test_text_and_broken_json_masked_loosely_and_cut() -> None:
    p = plugin(max_bytes=64)
    assert p.capture(b'{"token": "t0k\\"en", "a": ') == '{"token": "***", "a": '
    assert p.capture(b"user=bob&password=s3cret&x=1") == "user=bob&password=***&x=1"
    assert p.capture(b"\xff\xfeok") == "\ufffd\ufffdok"
    cut = p.capture(b"a" * 100)
    assert cut == "a" * 64 + "...[cut: 100 bytes]"


def test_which_bodies_are_held() -> None:
    p = plugin(max_buffer_bytes=1000)
    small = ctx([*JSON, (b"content-length", b"10")])
    assert p.wants_request_body(small)
    large = ctx([*JSON, (b"content-length", b"5000")])
    assert not p.wants_request_body(large)
    assert large.vars[BODIES]["request"] == "[not captured: 5000 bytes]"
    chunked = ctx(JSON)
    assert not p.wants_request_body(chunked)
    assert "without a declared length" in chunked.vars[BODIES]["request"]
    image = ctx([(b"content-type", b"image/png"), (b"content-length", b"10")])
    assert not p.wants_request_body(image) and BODIES not in image.vars
    c = ctx([])
    assert p.wants_response_body(c, 200, [(b"content-type", b"application/problem+json")])
    assert not p.wants_response_body(c, 200, [(b"content-type", b"text/event-stream")])
    assert c.vars[BODIES]["response"] == "[not captured: an event stream]"
    assert not p.wants_response_body(c, 200, [*JSON, (b"content-encoding", b"gzip")])
    assert not plugin(response=False).runs("response_body")
    assert plugin().runs("request_body") and not plugin(request=False).runs("request_body")


@pytest.mark.parametrize("config", [{"redact": ["name"]}, {"content_types": ["json"]},
                                    {"max_bytes": 0}, {"unknown": 1}])
def test_bad_settings_are_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        build_plugin("log-bodies", config)


Answer = Callable[[UpstreamRequest, asyncio.StreamWriter], Awaitable[None]]


async def through(answer: Answer, config: dict[str, Any], method: str, path: str,
                  headers: HeaderList | None = None,
                  body: bytes | None = None) -> tuple[Response, RequestContext]:
    """One request through a gateway whose service has log-bodies (``config``) in
    front of an upstream that answers with ``answer``: the answer, and the finished
    request's context as the log phase left it."""
    up = await HttpUpstream(answer).start()
    gw = await start_gateway({"services": [service("s", f"http://{up.address}", plugins=[
        {"name": "log-bodies", "config": config}])]})
    finished = gw.finished()
    try:
        got = await http(gw.port, method, path, headers, body)
    finally:
        await gw.close()
        await up.close()
    return got, finished[0]


async def test_through_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    original = LogBodiesPlugin.response_body

    def spy(self: LogBodiesPlugin, c: RequestContext, status: int, headers: HeaderList,
            body: bytes) -> bytes:
        result = original(self, c, status, headers, body)
        seen.append(dict(c.vars[BODIES]))
        return result

    monkeypatch.setattr(LogBodiesPlugin, "response_body", spy)
    received: list[bytes] = []

    async def answer(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        received.append(req.body)
        writer.write(ok_response(b'{"id_token": "x.y.z", "ok": true}',
                                 headers=[(b"content-type", b"application/json")]))

    up = await HttpUpstream(answer).start()
    gw = await start_gateway({"services": [service("s", f"http://{up.address}", plugins=[
        {"name": "log-bodies"}])]})
    try:
        body = b'{"email": "kid@school.edu", "password": "pw"}'
        got = await http(gw.port, "POST", "/s/login",
                         [(b"content-type", b"application/json")], body)
    finally:
        await gw.close()
        await up.close()
    assert received == [body]  # forwarded untouched
    assert got.body == b'{"id_token": "x.y.z", "ok": true}'
    assert seen == [{"request": '{"email": "[email]", "password": "***"}',
                     "response": '{"id_token": "***", "ok": true}'}]


@pytest.mark.parametrize("pause", [0.0, 0.05])  # all in before the gathering, or not
async def test_a_longer_chunked_response_is_captured_in_part(pause: float) -> None:
    """A response with no declared length that outgrows ``max_buffer_bytes`` goes out
    untouched; its first ``max_bytes`` are recorded, masked and redacted."""
    head = b"password=hunter2&contact=kid@school.edu&rows="
    payload = head + b"x" * 20_000

    async def answer(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        for start in range(0, len(payload), 4096):
            piece = payload[start:start + 4096]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            if start == 12288:  # past the buffer: the gateway streams the rest
                await asyncio.sleep(pause)
        writer.write(b"0\r\n\r\n")

    got, finished = await through(answer, {"max_buffer_bytes": 8192, "max_bytes": 256},
                                  "GET", "/s/export")
    assert got.status == 200 and got.body == payload  # streamed on, whole and untouched
    recorded = finished.vars[BODIES]["response"]
    # the run of x cut off at max_bytes is a cut word: dropped; the size is known
    # when the whole body was in before the gathering began
    assert recorded in (f"password=***&contact=[email]&rows=...[captured in part: {size}]"
                        for size in ("more than 8192 bytes", f"{len(payload)} bytes"))


def test_a_part_loses_its_cut_off_word() -> None:
    """The first bytes of a longer body: a secret or an address cut in two is not
    recorded half (a whole body keeps its last word)."""
    p = plugin(max_bytes=64)
    assert p.capture(b'{"user": "amy@school.edu", "password": "hunt', partial=True) == \
        '{"user": "[email]", "password": "'
    assert p.capture(b"note=call me&contact=kid@scho", partial=True) == "note=call me&contact="
    assert p.capture(b"token=abc123", partial=True) == "token=***"
    assert p.capture(b"a" * 100, partial=True) == ""  # one word, cut: nothing of it
    assert p.capture(b"ok " + b"b" * 100, partial=True) == "ok "
    assert p.capture(b"x=" + b"y" * 100) == "x=" + "y" * 62 + "...[cut: 102 bytes]"




@pytest.mark.parametrize("chunked", [False, True])
async def test_a_longer_upload_streams_on_and_its_first_bytes_are_recorded(
        chunked: bool) -> None:
    """An upload over ``max_buffer_bytes`` (or without a declared length) goes
    upstream as it came, unheld; the chunks going by are watched and its first
    ``max_bytes`` recorded, masked and redacted, with its size."""
    payload = b"password=hunter2&contact=kid@school.edu&rows=" + b"x" * 20_000
    received: list[bytes] = []

    async def answer(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        received.append(req.body)
        writer.write(ok_response(b"{}", headers=[(b"content-type", b"application/json")]))

    headers = [(b"content-type", b"text/plain")]
    body = payload
    if chunked:
        headers.append((b"transfer-encoding", b"chunked"))
        body = b"".join(b"%x\r\n%s\r\n" % (len(payload[i:i + 3000]), payload[i:i + 3000])
                        for i in range(0, len(payload), 3000)) + b"0\r\n\r\n"
    got, finished = await through(answer, {"max_buffer_bytes": 8192, "max_bytes": 256},
                                  "POST", "/s/upload", headers, body)
    assert got.status == 200 and received == [payload]  # forwarded whole, untouched
    assert finished.vars[BODIES] == {
        "request": "password=***&contact=[email]&rows=...[captured in part: 20045 bytes]",
        "response": "{}"}


async def test_a_short_chunked_upload_is_recorded_whole() -> None:
    received: list[bytes] = []

    async def answer(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        received.append(req.body)
        writer.write(ok_response(b"ok"))

    got, finished = await through(
        answer, {}, "POST", "/s/upload",
        [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        b'8\r\n{"a": 1,\r\ne\r\n "token": "t"}\r\n0\r\n\r\n')
    assert got.status == 200 and received == [b'{"a": 1, "token": "t"}']
    assert finished.vars[BODIES]["request"] == '{"a": 1, "token": "***"}'


async def test_a_longer_response_with_a_declared_length_is_captured_in_part() -> None:
    """A response whose Content-Length is over the buffer is gathered up to it, then
    streams on untouched; its first ``max_bytes`` are recorded with its size."""
    payload = b'{"id_token": "secret", "rows": "' + b"x" * 30_000 + b'"}'

    async def answer(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(ok_response(payload, headers=[(b"content-type", b"application/json")]))

    got, finished = await through(answer, {"max_buffer_bytes": 8192, "max_bytes": 128},
                                  "GET", "/s/export")
    assert got.status == 200 and got.body == payload
    assert got.header("content-length") == str(len(payload))
    assert finished.vars[BODIES]["response"] == (
        f'{{"id_token": "***", "rows": "...[captured in part: {len(payload)} bytes]')

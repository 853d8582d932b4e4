"""request-size-limit: declared lengths refused at once, chunked bodies counted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway_harness import HttpUpstream, RawClient, Response, http, service, start_gateway
from pydantic import ValidationError

from campusgate.config.model import PluginSpec
from campusgate.plugins.registry import build_plugin
from campusgate.proxy.context import RequestContext
from campusgate.proxy.gateway import Gateway


def ctx(*headers: tuple[bytes, bytes]) -> RequestContext:
    return RequestContext("POST", "/x", "", list(headers), "127.0.0.1", "http", "h", "rid")


@pytest.mark.parametrize("config, length, status", [
    ({"allowed_payload_size": 10, "size_unit": "bytes"}, b"10", None),
    ({"allowed_payload_size": 10, "size_unit": "bytes"}, b"11", 413),
    ({"allowed_payload_size": 1, "size_unit": "kilobytes"}, b"1024", None),
    ({"allowed_payload_size": 1, "size_unit": "kilobytes"}, b"1025", 413),
    ({"allowed_payload_size": 2}, b"2097152", None),
    ({"allowed_payload_size": 2}, b"2097153", 413),
    ({"allowed_payload_size": 0, "size_unit": "bytes"}, b"0", None),
])
def test_declared_length_against_the_limit(config: dict[str, Any], length: bytes,
                                           status: int | None) -> None:
    answer = build_plugin("request-size-limit", config).access_now(
        ctx((b"content-length", length)))
    assert getattr(answer, "status", None) == status


def test_streamed_bytes_are_counted_against_the_limit() -> None:
    plugin = build_plugin("request-size-limit", {"allowed_payload_size": 10,
                                                 "size_unit": "bytes"})
    assert plugin.runs("request_stream") and not plugin.runs("request_body")
    assert plugin.request_stream(ctx(), 10) is None
    refused = plugin.request_stream(ctx(), 11)
    assert refused is not None and refused.status == 413
    assert json.loads(refused.body)["error"]["message"] == (
        "the request body is larger than 10 bytes")


def test_require_content_length_refuses_chunked_bodies_only() -> None:
    plugin = build_plugin("request-size-limit", {"require_content_length": True})
    refused = plugin.access_now(ctx((b"transfer-encoding", b"chunked")))
    assert refused is not None and refused.status == 411
    assert plugin.access_now(ctx((b"content-length", b"5"))) is None
    assert plugin.access_now(ctx()) is None  # no body at all


@pytest.mark.parametrize("config, fault", [
    ({"allowed_payload_size": -1}, "allowed_payload_size"),
    ({"size_unit": "gigabytes"}, "size_unit"),
    ({"limit": 5}, "limit"),
])
def test_bad_config_is_rejected_when_config_loads(config: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="request-size-limit", config=config)


# ---------------------------------------------------------------- through the gateway


async def send(port: int, head: bytes, body: bytes) -> Response:
    client = await RawClient.connect(port)
    try:
        await client.send_raw(b"POST /s HTTP/1.1\r\nhost: gw.test\r\n" + head + b"\r\n" + body)
        return await client.read_response()
    finally:
        await client.close()


def chunks(*parts: bytes, end: bool = True) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + (b"0\r\n\r\n" if end else b"")


CHUNKED = b"transfer-encoding: chunked\r\n"
LIMIT = {"name": "request-size-limit", "config": {"allowed_payload_size": 10,
                                                  "size_unit": "bytes"}}


@pytest.mark.parametrize("url", ["http", "builtin://echo"])
async def test_gateway_refuses_bodies_over_the_limit(url: str) -> None:
    up = await HttpUpstream().start()
    target = f"http://{up.address}" if url == "http" else url
    gw = await start_gateway({"services": [service("s", target, plugins=[LIMIT])]})
    try:
        small = await send(gw.port, CHUNKED, chunks(b"12345", b"67890"))
        # declared too large, with Expect: 100-continue: refused before any body is sent
        declared = await send(gw.port, b"content-length: 11\r\nexpect: 100-continue\r\n", b"")
        # chunked and never finished: cut when it passes the limit
        streamed = await send(gw.port, CHUNKED, chunks(b"12345", b"678901", end=False))
    finally:
        await gw.close()
        await up.close()
    assert small.status == 200
    assert (declared.status, streamed.status) == (413, 413)
    assert json.loads(declared.body)["error"]["code"] == "payload_too_large"
    assert declared.header("connection") == "close"
    if url == "http":
        assert [r.body for r in up.requests] == [b"1234567890"]


async def test_bodyless_requests_keep_the_callback_path(monkeypatch: pytest.MonkeyPatch) -> None:
    decisions: list[bool] = []
    original = Gateway.try_fast

    def counting(self: Gateway, conn: Any, req: Any) -> bool:
        decisions.append(original(self, conn, req))
        return decisions[-1]

    monkeypatch.setattr(Gateway, "try_fast", counting)
    up = await HttpUpstream().start()
    gw = await start_gateway({"services": [service("s", f"http://{up.address}",
                                                   plugins=[LIMIT])]})
    client = await RawClient.connect(gw.port)
    try:
        answers = [await client.request("GET", "/s") for _ in range(2)]
    finally:
        await client.close()
        await gw.close()
        await up.close()
    assert [a.status for a in answers] == [200, 200]
    assert decisions == [False, True]


async def test_under_the_limit_with_content_length_passes() -> None:
    up = await HttpUpstream().start()
    gw = await start_gateway({"services": [service("s", f"http://{up.address}",
                                                   plugins=[LIMIT])]})
    try:
        answer = await http(gw.port, "POST", "/s", body=b"0123456789")
    finally:
        await gw.close()
        await up.close()
    assert answer.status == 200
    assert up.requests[0].body == b"0123456789"

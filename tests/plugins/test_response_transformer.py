"""response-transformer: headers on every response, JSON bodies only when asked."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import pytest
from gateway_harness import (
    HttpUpstream,
    RawClient,
    UpstreamRequest,
    http,
    ok_response,
    service,
    start_gateway,
)
from pydantic import ValidationError

from campusgate.config.model import PluginSpec
from campusgate.plugins.registry import build_plugin
from campusgate.plugins.response_transformer import ResponseTransformerPlugin
from campusgate.proxy.consumers import ConsumerInfo
from campusgate.proxy.context import HeaderList, RequestContext
from campusgate.proxy.gateway import Gateway


def plugin(**config: Any) -> ResponseTransformerPlugin:
    made = build_plugin("response-transformer", config)
    assert isinstance(made, ResponseTransformerPlugin)
    return made


def ctx(headers: HeaderList | None = None, **extra: Any) -> RequestContext:
    context = RequestContext("GET", "/x", "", list(headers or []), "127.0.0.1", "http", "h",
                             "rid")
    for key, value in extra.items():
        setattr(context, key, value)
    return context


def test_header_operations_edit_the_response_headers() -> None:
    p = plugin(remove={"headers": ["server"]}, rename={"headers": {"x-old": "x-new"}},
               replace={"headers": {"cache-control": "no-store"}},
               add={"headers": {"x-user": "{consumer.name}", "x-from": "{headers.origin}"}},
               append={"headers": {"vary": "Origin"}})
    headers: HeaderList = [(b"server", b"up"), (b"x-old", b"1"), (b"cache-control", b"max-age=9"),
                           (b"vary", b"Accept")]
    p.response(ctx([(b"origin", b"https://a.test")],
                   consumer=ConsumerInfo("c", "alice", None, (), ())), 200, headers)
    assert headers == [(b"x-new", b"1"), (b"cache-control", b"no-store"), (b"vary", b"Accept"),
                       (b"x-user", b"alice"), (b"x-from", b"https://a.test"),
                       (b"vary", b"Origin")]


def test_json_operations_with_templates() -> None:
    p = plugin(remove={"json": ["internal"]}, add={"json": {"served_to": "{consumer.id}"}},
               rename={"json": {"data.n": "data.count"}})
    assert p.runs("response_body") and not p.runs("request_body")
    body = p.response_body(ctx(consumer=ConsumerInfo("c-9", "bob", None, (), ())), 200, [],
                           b'{"internal": 1, "data": {"n": 3}}')
    assert json.loads(body) == {"data": {"count": 3}, "served_to": "c-9"}
    assert p.response_body(ctx(), 200, [], b"<html>") == b"<html>"


def test_which_responses_are_buffered() -> None:
    p = plugin(add={"json": {"a": 1}})
    assert p.wants_response_body(ctx(), 200, [(b"content-type", b"application/json")])
    assert p.wants_response_body(ctx(), 500, [(b"content-type", b"application/problem+json")])
    assert not p.wants_response_body(ctx(), 200, [(b"content-type", b"text/html")])
    assert not p.wants_response_body(ctx(), 200, [(b"content-type", b"application/json"),
                                                  (b"content-encoding", b"gzip")])
    assert not plugin(add={"headers": {"a": "1"}}).runs("response_body")


@pytest.mark.parametrize("config, fault", [
    ({"remove": {"querystring": ["a"]}}, "a response has no query string"),
    ({"add": {"headers": {"content-length": "1"}}}, "itself"),
    ({"remove": {"headers": ["x-request-id"]}}, "itself"),
    ({"add": {"json": {"a": "{query}"}}}, "unknown variable"),
    ({"uri": "/a"}, "uri"),
])
def test_bad_config_is_rejected_when_config_loads(config: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="response-transformer", config=config)


# ---------------------------------------------------------------- through the gateway

DOC = json.dumps({"id": 1, "secret": "s", "items": [1, 2]}).encode()


async def answer_by_path(req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
    json_ct = (b"content-type", b"application/json")
    if req.target.endswith("/chunked"):
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                     b"transfer-encoding: chunked\r\n\r\n"
                     + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (DOC[:5], DOC[5:]))
                     + b"0\r\n\r\n")
    elif req.target.endswith("/gzip"):
        writer.write(ok_response(gzip.compress(DOC), headers=[json_ct,
                                                              (b"content-encoding", b"gzip")]))
    elif req.target.endswith("/broken"):
        writer.write(ok_response(b'{"id": ', headers=[json_ct]))
    elif req.target.endswith("/big"):
        big = json.dumps({"secret": "s", "pad": "x" * 2000}).encode()
        writer.write(ok_response(big, headers=[json_ct]))
    else:
        writer.write(ok_response(DOC, 201, headers=[json_ct, (b"server", b"up")]))


async def test_gateway_rewrites_json_bodies_and_leaves_the_rest() -> None:
    up = await HttpUpstream(answer_by_path).start()
    gw = await start_gateway({"services": [service("s", f"http://{up.address}", plugins=[
        {"name": "response-transformer",
         "config": {"remove": {"headers": ["server"], "json": ["secret"]},
                    "append": {"json": {"items": 3}}, "max_body_bytes": 1000}}])]})
    try:
        plain = await http(gw.port, "GET", "/s/plain")
        streamed = await http(gw.port, "GET", "/s/chunked")
        zipped = await http(gw.port, "GET", "/s/gzip")
        broken = await http(gw.port, "GET", "/s/broken")
        big = await http(gw.port, "GET", "/s/big")
    finally:
        await gw.close()
        await up.close()
    expected = {"id": 1, "items": [1, 2, 3]}
    assert plain.status == 201 and json.loads(plain.body) == expected
    assert plain.header("server") is None
    assert plain.header("content-length") == str(len(plain.body))
    assert json.loads(streamed.body) == expected
    assert streamed.header("transfer-encoding") is None
    assert gzip.decompress(zipped.body) == DOC  # content-coded: passed through
    assert broken.body == b'{"id": '  # not JSON: passed through
    assert json.loads(big.body)["secret"] == "s"  # over max_body_bytes: passed through


async def test_header_only_config_keeps_the_callback_path_and_edits_local_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    decisions: list[bool] = []
    original = Gateway.try_fast

    def counting(self: Gateway, conn: Any, req: Any) -> bool:
        decisions.append(original(self, conn, req))
        return decisions[-1]

    monkeypatch.setattr(Gateway, "try_fast", counting)
    up = await HttpUpstream(answer_by_path).start()
    transformer = {"name": "response-transformer",
                   "config": {"add": {"headers": {"x-gw": "yes"}}}}
    gw = await start_gateway({"services": [
        service("s", f"http://{up.address}", plugins=[transformer]),
        service("t", f"http://{up.address}", plugins=[
            transformer, {"name": "request-termination", "config": {"status_code": 418}}]),
    ]})
    client = await RawClient.connect(gw.port)
    try:
        answers = [await client.request("GET", "/s") for _ in range(2)]
        local = await http(gw.port, "GET", "/t")
    finally:
        await client.close()
        await gw.close()
        await up.close()
    assert [a.header("x-gw") for a in answers] == ["yes", "yes"]
    assert answers[1].body == DOC
    assert decisions[:2] == [False, True]
    assert (local.status, local.header("x-gw")) == (418, "yes")

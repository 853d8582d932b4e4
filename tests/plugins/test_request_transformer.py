"""request-transformer: headers, query, JSON body, method and path; checks at load."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway_harness import HttpUpstream, RawClient, http, service, start_gateway
from pydantic import ValidationError

from campusgate.config.model import PluginSpec
from campusgate.plugins.registry import build_plugin
from campusgate.plugins.request_transformer import RequestTransformerPlugin
from campusgate.proxy.consumers import ConsumerInfo
from campusgate.proxy.context import HeaderList, RequestContext
from campusgate.proxy.gateway import Gateway
from campusgate.proxy.rewrites import UPSTREAM_METHOD, UPSTREAM_PATH

ALICE = ConsumerInfo("c-1", "alice", "A-7", ("staff",), ())


def plugin(**config: Any) -> RequestTransformerPlugin:
    made = build_plugin("request-transformer", config)
    assert isinstance(made, RequestTransformerPlugin)
    return made


def ctx(headers: HeaderList | None = None, query: str = "", **extra: Any) -> RequestContext:
    context = RequestContext("GET", "/x", query, list(headers or []), "127.0.0.1", "http", "h",
                             "rid")
    for key, value in extra.items():
        setattr(context, key, value)
    return context


def run(p: RequestTransformerPlugin, context: RequestContext) -> RequestContext:
    assert p.access_now(context) is None
    return context


# ---------------------------------------------------------------- headers


HEADERS: HeaderList = [(b"x-a", b"1"), (b"x-b", b"2"), (b"x-a", b"3"), (b"accept", b"*/*")]


@pytest.mark.parametrize("config, expected", [
    ({"remove": {"headers": ["X-A"]}}, [(b"x-b", b"2"), (b"accept", b"*/*")]),
    ({"rename": {"headers": {"x-a": "x-c"}}},
     [(b"x-c", b"1"), (b"x-b", b"2"), (b"x-c", b"3"), (b"accept", b"*/*")]),
    ({"rename": {"headers": {"x-missing": "x-b"}}}, HEADERS),  # nothing to rename
    ({"replace": {"headers": {"x-a": "new"}}},
     [(b"x-a", b"new"), (b"x-b", b"2"), (b"accept", b"*/*")]),
    ({"replace": {"headers": {"x-none": "new"}}}, HEADERS),  # only what is present
    ({"add": {"headers": {"x-a": "no", "x-new": "yes"}}}, [*HEADERS, (b"x-new", b"yes")]),
    ({"append": {"headers": {"x-a": ["4", "5"]}}}, [*HEADERS, (b"x-a", b"4"), (b"x-a", b"5")]),
])
def test_header_operations(config: dict[str, Any], expected: HeaderList) -> None:
    assert run(plugin(**config), ctx(HEADERS)).headers == expected


def test_operations_run_in_order_remove_rename_replace_add_append() -> None:
    context = run(plugin(remove={"headers": ["x-b"]}, rename={"headers": {"x-a": "x-b"}},
                         replace={"headers": {"x-b": "r"}}, add={"headers": {"x-b": "no"}},
                         append={"headers": {"x-b": "z"}}), ctx(HEADERS))
    assert context.headers == [(b"x-b", b"r"), (b"accept", b"*/*"), (b"x-b", b"z")]


def test_templates_read_the_request_as_it_came_and_skip_what_is_missing() -> None:
    p = plugin(remove={"headers": ["x-a"]},
               add={"headers": {"x-user": "{consumer.name}/{consumer.custom_id}",
                                "x-was": "{headers.x-a}", "x-q": "{query.q}",
                                "x-id": "{params.id}", "x-none": "{headers.x-none}"}})
    context = run(p, ctx(HEADERS, "q=a%20b&q=2", consumer=ALICE, params={"id": "7"}))
    added = dict(context.headers[2:])
    assert added == {b"x-user": b"alice/A-7", b"x-was": b"1", b"x-q": b"a b", b"x-id": b"7"}
    anonymous = run(p, ctx(HEADERS))
    assert all(name not in (b"x-user", b"x-q", b"x-id") for name, _ in anonymous.headers)


def test_a_template_value_cannot_inject_header_lines() -> None:
    context = run(plugin(add={"headers": {"x-q": "{query.q}"}}), ctx([], "q=a%0d%0aevil:%201"))
    assert context.headers == []


# ---------------------------------------------------------------- query, method, path


@pytest.mark.parametrize("config, query, expected", [
    ({"remove": {"querystring": ["apikey"]}}, "a=1&apikey=s&b=%2F", "a=1&b=%2F"),
    ({"rename": {"querystring": {"a": "z"}}}, "a=1&b=2&z=0", "z=1&b=2"),
    ({"replace": {"querystring": {"b": "x y"}}}, "a=1&b=2&b=3", "a=1&b=x%20y"),
    ({"add": {"querystring": {"a": "9", "c": "3"}}}, "a=1", "a=1&c=3"),
    ({"append": {"querystring": {"a": ["2", "3"]}}}, "a=1", "a=1&a=2&a=3"),
    ({"add": {"querystring": {"who": "{consumer.id}"}}}, "", ""),  # no consumer: skipped
])
def test_query_operations_keep_untouched_parameters_as_sent(
        config: dict[str, Any], query: str, expected: str) -> None:
    assert run(plugin(**config), ctx(query=query)).query == expected


def test_method_and_uri_set_what_goes_upstream() -> None:
    context = run(plugin(method="post", uri="/v2/items/{params.id}/{headers.x-name}"),
                  ctx([(b"x-name", b"a b")], params={"id": "7"}))
    assert context.method == "POST"
    assert context.vars[UPSTREAM_METHOD] == b"POST"
    assert context.path == context.vars[UPSTREAM_PATH] == "/v2/items/7/a%20b"


# ---------------------------------------------------------------- JSON bodies


def body_of(p: RequestTransformerPlugin, context: RequestContext, body: bytes) -> Any:
    run(p, context)
    result = p.request_body(context, body)
    assert isinstance(result, bytes)
    return json.loads(result) if result != body else result


JSON_CT: HeaderList = [(b"content-type", b"application/json; charset=utf-8")]


def test_json_operations_on_top_level_and_nested_fields() -> None:
    p = plugin(remove={"json": ["secret", "user.ssn"]},
               rename={"json": {"user.mail": "user.email"}},
               replace={"json": {"user.role": "admin", "missing": 1}},
               add={"json": {"source": "{consumer.name}", "meta.v": 2, "user.role": "no"}},
               append={"json": {"tags": "new", "list": {"k": True}}})
    doc = body_of(p, ctx(JSON_CT, consumer=ALICE), json.dumps({
        "secret": "x", "tags": "old", "list": [1],
        "user": {"ssn": "1", "mail": "a@b", "role": "user"}}).encode())
    assert doc == {"tags": ["old", "new"], "list": [1, {"k": True}], "source": "alice",
                   "user": {"email": "a@b", "role": "admin"}, "meta": {"v": 2}}


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"a": 1', b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_left_alone(body: bytes) -> None:
    p = plugin(add={"json": {"x": 1}})
    assert body_of(p, ctx(JSON_CT), body) == body


def test_only_json_bodies_are_buffered() -> None:
    p = plugin(add={"json": {"x": 1}})
    assert p.runs("request_body")
    assert p.wants_request_body(ctx([(b"content-type", b"application/vnd.api+json")]))
    assert not p.wants_request_body(ctx([(b"content-type", b"text/plain")]))
    assert not p.wants_request_body(ctx([*JSON_CT, (b"content-encoding", b"gzip")]))
    assert not plugin(add={"headers": {"x": "1"}}).runs("request_body")


# ---------------------------------------------------------------- config checks


@pytest.mark.parametrize("config, fault", [
    ({"add": {"headers": {"bad name": "x"}}}, "not a valid header name"),
    ({"remove": {"headers": ["Host"]}}, "sets Host itself"),
    ({"add": {"headers": {"content-length": "1"}}}, "itself"),
    ({"add": {"headers": {"x": "{nope}"}}}, "unknown variable"),
    ({"add": {"headers": {"x": "{consumer.email}"}}}, "consumer has id, name and custom_id"),
    ({"add": {"headers": {"x": "a\r\nb"}}}, "CR, LF"),
    ({"add": {"headers": {"x": "{"}}}, "literal brace"),
    ({"replace": {"headers": {"x": ["1", "2"]}}}, "a list only in append"),
    ({"remove": {"json": ["a..b"]}}, "dotted path"),
    ({"remove": {"querystring": [""]}}, "cannot be empty"),
    ({"remove": {"body": ["a"]}}, "body"),
    ({"uri": "/a?b=1"}, "without '?'"),
    ({"uri": "v2"}, "starting with '/'"),
    ({"uri": "/{params.id"}, "literal brace"),
    ({"method": "GET POST"}, "not an HTTP method"),
    ({"max_body_bytes": 0}, "max_body_bytes"),
])
def test_bad_config_is_rejected_when_config_loads(config: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="request-transformer", config=config)


# ---------------------------------------------------------------- through the gateway


async def test_gateway_sends_the_transformed_request_to_the_app() -> None:
    gw = await start_gateway({"services": [service(
        "s", "builtin://echo", paths=["/s/{id}"], plugins=[{"name": "request-transformer",
                                                            "config": {
            "method": "PUT", "uri": "/items/{params.id}",
            "remove": {"headers": ["x-drop"], "querystring": ["apikey"], "json": ["pw"]},
            "add": {"headers": {"x-added": "{headers.x-drop}"}, "json": {"id": "{params.id}"}},
        }}])]})
    try:
        answer = await http(gw.port, "POST", "/s/42/rest?apikey=k&keep=1",
                            headers=[(b"x-drop", b"d"), (b"content-type", b"application/json")],
                            body=b'{"pw": "s", "name": "n"}')
        text = await http(gw.port, "POST", "/s/42", headers=[(b"content-type", b"text/plain")],
                          body=b'{"pw": "s"}')
    finally:
        await gw.close()
    seen = json.loads(answer.body)
    assert (seen["method"], seen["path"], seen["query"]) == ("PUT", "/items/42", "keep=1")
    assert seen["headers"]["x-added"] == "d" and "x-drop" not in seen["headers"]
    assert json.loads(seen["body"]) == {"name": "n", "id": "42"}
    assert seen["headers"]["content-length"] == str(len(seen["body"]))
    assert json.loads(text.body)["body"] == '{"pw": "s"}'  # not JSON: streamed as sent


async def test_header_only_config_keeps_the_callback_path(monkeypatch: pytest.MonkeyPatch) -> None:
    decisions: list[bool] = []
    original = Gateway.try_fast

    def counting(self: Gateway, conn: Any, req: Any) -> bool:
        decisions.append(original(self, conn, req))
        return decisions[-1]

    monkeypatch.setattr(Gateway, "try_fast", counting)
    up = await HttpUpstream().start()
    gw = await start_gateway({"services": [service("s", f"http://{up.address}", plugins=[
        {"name": "request-transformer",
         "config": {"add": {"headers": {"x-via": "gw"}, "querystring": {"v": "2"}}}}])]})
    client = await RawClient.connect(gw.port)
    try:
        answers = [await client.request("GET", "/s/a?x=1") for _ in range(2)]
    finally:
        await client.close()
        await gw.close()
        await up.close()
    assert [a.status for a in answers] == [200, 200]
    assert decisions == [False, True]
    assert [(r.target, r.header("x-via")) for r in up.requests] == [("/a?x=1&v=2", "gw")] * 2

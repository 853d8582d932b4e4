"""key-auth: keys in headers or the query, unknown keys refused, credentials hidden."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway_harness import HttpUpstream, http, service, start_gateway
from pydantic import ValidationError

from campusgate.config.model import Consumer, PluginSpec
from campusgate.plugins.authentication import Identity
from campusgate.plugins.base import PluginEnv
from campusgate.plugins.key_auth import KeyAuthPlugin, remove_query_parameter
from campusgate.plugins.registry import build_plugin, default_resources
from campusgate.proxy.consumers import ConsumerIndex
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext

KEY = "k-alice-0123456789"
CONSUMERS = [{"name": "alice", "custom_id": "A-1", "groups": ["staff"],
              "credentials": [{"type": "key-auth", "key": KEY, "id": "alice-key"}]}]


def plugin(**config: Any) -> KeyAuthPlugin:
    resources = default_resources()
    index = ConsumerIndex.build([Consumer.model_validate(c) for c in CONSUMERS],
                                resources.keyring)
    made = build_plugin("key-auth", config, PluginEnv(resources, "route:r", index))
    assert isinstance(made, KeyAuthPlugin)
    return made


def ctx(headers: HeaderList | None = None, query: str = "") -> RequestContext:
    return RequestContext("GET", "/x", query, headers or [], "127.0.0.1", "http", "h", "rid")


def test_key_in_a_header_names_the_consumer_and_is_hidden() -> None:
    c = ctx([(b"x-api-key", KEY.encode())])
    answer = plugin().authenticate_now(c)
    assert isinstance(answer, Identity)
    assert answer.consumer is not None and answer.consumer.name == "alice"
    assert answer.credential == "alice-key"
    assert b"x-api-key" in c.upstream_headers_remove


def test_header_names_are_case_insensitive_in_config() -> None:
    c = ctx([(b"x-district-key", KEY.encode())])
    assert isinstance(plugin(key_names=["X-District-Key"]).authenticate_now(c), Identity)


def test_key_in_the_query_is_removed_and_the_rest_kept_byte_exact() -> None:
    c = ctx(query=f"a=1&apikey={KEY}&b=%20x+y&&c")
    assert isinstance(plugin().authenticate_now(c), Identity)
    assert c.query == "a=1&b=%20x+y&&c"
    assert not c.upstream_headers_remove


def test_percent_encoded_query_key_is_decoded() -> None:
    encoded = KEY.replace("-", "%2D")
    assert isinstance(plugin().authenticate_now(ctx(query=f"apikey={encoded}")), Identity)


def test_hide_credentials_false_keeps_header_and_query() -> None:
    p = plugin(hide_credentials=False)
    c = ctx([(b"apikey", KEY.encode())])
    assert isinstance(p.authenticate_now(c), Identity)
    assert not c.upstream_headers_remove
    c = ctx(query=f"apikey={KEY}&x=1")
    assert isinstance(p.authenticate_now(c), Identity)
    assert c.query == f"apikey={KEY}&x=1"


@pytest.mark.parametrize("headers, query", [
    ([], ""),
    ([(b"authorization", b"Bearer abc")], "x=1&apikeyx=2"),
])
def test_no_key_is_no_credential(headers: HeaderList, query: str) -> None:
    assert plugin().authenticate_now(ctx(headers, query)) is None


@pytest.mark.parametrize("headers, query", [
    ([(b"apikey", b"not-a-key-of-anyone")], ""),
    ([(b"apikey", b"")], ""),
    ([], "apikey=wrong"),
])
def test_unknown_or_empty_key_is_a_401_with_the_key_challenge(headers: HeaderList,
                                                              query: str) -> None:
    answer = plugin(realm="district").authenticate_now(ctx(headers, query))
    assert isinstance(answer, LocalResponse)
    assert answer.status == 401
    assert json.loads(answer.body)["error"]["message"] == "invalid API key"
    assert (b"www-authenticate", b'Key realm="district"') in answer.headers


def test_key_in_query_false_ignores_the_query() -> None:
    assert plugin(key_in_query=False).authenticate_now(ctx(query=f"apikey={KEY}")) is None


def test_key_in_header_false_ignores_headers() -> None:
    p = plugin(key_in_header=False)
    assert p.authenticate_now(ctx([(b"apikey", KEY.encode())])) is None


def test_the_first_key_header_decides() -> None:
    c = ctx([(b"apikey", b"wrong-key-0000"), (b"x-api-key", KEY.encode())])
    assert isinstance(plugin().authenticate_now(c), LocalResponse)


@pytest.mark.parametrize("query, name, expected", [
    ("apikey=1", "apikey", ""),
    ("a=1&apikey=2&apikey=3&b", "apikey", "a=1&b"),
    ("apikey&a=%41", "apikey", "a=%41"),
    ("a=apikey", "apikey", "a=apikey"),
])
def test_remove_query_parameter(query: str, name: str, expected: str) -> None:
    assert remove_query_parameter(query, name) == expected


@pytest.mark.parametrize("config, fault", [
    ({"key_in_header": False, "key_in_query": False}, "could not be sent anywhere"),
    ({"key_names": []}, "key_names"),
    ({"key_names": ["bad name"]}, "must be a token"),
    ({"realm": 'a"b'}, "realm"),
    ({"keys": ["x"]}, "keys"),
])
def test_bad_config_fails_when_the_config_loads(config: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="key-auth", config=config)


# ---------------------------------------------------------------- through the gateway


async def test_gateway_forwards_with_consumer_headers_and_without_the_key() -> None:
    up = await HttpUpstream().start()
    entities = {"services": [service("s", f"http://{up.address}",
                                     plugins=[{"name": "key-auth"}])],
                "consumers": CONSUMERS}
    gw = await start_gateway(entities)
    try:
        ok = await http(gw.port, "GET", "/s/x", [(b"x-api-key", KEY.encode())])
        assert ok.status == 200
        seen = up.requests[-1]
        assert seen.header("x-api-key") is None
        assert seen.header("x-consumer-name") == "alice"
        assert seen.header("x-consumer-custom-id") == "A-1"
        assert seen.header("x-credential-identifier") == "alice-key"

        ok = await http(gw.port, "GET", f"/s/x?apikey={KEY}&q=1")
        assert ok.status == 200
        assert up.requests[-1].target == "/x?q=1"

        bad = await http(gw.port, "GET", "/s/x", [(b"x-api-key", b"nope-nope-nope")])
        assert bad.status == 401
        assert bad.header("www-authenticate") == 'Key realm="campusgate"'
        none = await http(gw.port, "GET", "/s/x")
        assert none.status == 401
        assert len(up.requests) == 2
    finally:
        await gw.close()
        await up.close()

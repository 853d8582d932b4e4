"""proxy-cache: hits, misses and bypasses over real sockets, in memory and in Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway_harness import (
    HttpUpstream,
    RawClient,
    Response,
    RunningGateway,
    UpstreamRequest,
    ok_response,
    service,
    start_gateway,
)
from pydantic import ValidationError

from campusgate.config.model import PluginSpec
from campusgate.keyring import Keyring
from campusgate.plugins._http_cache import CacheEntry, cache_control, freshness, storable_vary
from campusgate.plugins.base import PluginResources
from campusgate.state.memory import MemoryState
from campusgate.state.redis import RedisState
from campusgate.state.resp import RespClient

SHARED_REDIS = "redis://127.0.0.1:6379/0"

# ---------------------------------------------------------------- the rules, without I/O


def test_cache_control_directives() -> None:
    headers = [(b"cache-control", b'Max-Age=60, private="set-cookie"'),
               (b"cache-control", b"no-store")]
    assert cache_control(headers) == {"max-age": "60", "private": "set-cookie",
                                      "no-store": None}


@pytest.mark.parametrize("directives, expected", [
    ({}, 300.0),
    ({"max-age": "60"}, 60.0),
    ({"max-age": "600"}, 300.0),
    ({"max-age": "60", "s-maxage": "10"}, 10.0),
    ({"max-age": "soon"}, 0.0),
])
def test_freshness_is_capped_by_the_response(directives: dict[str, str | None],
                                             expected: float) -> None:
    assert freshness(directives, 300) == expected


def test_only_responses_varying_on_keyed_headers_are_storable() -> None:
    assert storable_vary([(b"vary", b"Accept-Encoding")], frozenset({"accept-encoding"}))
    assert not storable_vary([(b"vary", b"Accept-Encoding, Origin")],
                             frozenset({"accept-encoding"}))
    assert not storable_vary([(b"vary", b"*")], frozenset())
    assert storable_vary([], frozenset())


def test_entries_round_trip_and_truncation_is_detected() -> None:
    entry = CacheEntry(404, [(b"content-type", b"text/plain"), (b"x-a", b"\x00\xff")],
                       b"gone", 1700000000.5)
    data = entry.encode()
    assert CacheEntry.decode(data) == entry
    for bad in (data[:10], data[:20], b"XX" + data[2:]):
        with pytest.raises(ValueError):
            CacheEntry.decode(bad)


@pytest.mark.parametrize("config, fault", [
    ({"ttl": 0}, "ttl"),
    ({"response_codes": [304]}, "cannot be cached"),
    ({"request_methods": ["POST"]}, "request_methods"),
    ({"cache_key": ["cookie"]}, "cache_key"),
    ({"strategy": "disk"}, "strategy"),
])
def test_bad_config_is_rejected_when_config_loads(config: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="proxy-cache", config=config)


# ---------------------------------------------------------------- through the gateway


class Origin:
    """An upstream whose answer depends on the path; counts what reaches it."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, req: UpstreamRequest, writer: asyncio.StreamWriter) -> None:
        self.calls += 1
        path = req.target.split("?")[0]
        headers = [(b"content-type", b"application/json"), (b"x-up", b"%d" % self.calls)]
        status = 200
        if path.endswith("/html"):
            headers[0] = (b"content-type", b"text/html")
        elif path.endswith("/cookie"):
            headers.append((b"set-cookie", b"s=1"))
        elif path.endswith("/private"):
            headers.append((b"cache-control", b"private"))
        elif path.endswith("/fresh0"):
            headers.append((b"cache-control", b"s-maxage=0"))
        elif path.endswith("/vary"):
            headers.append((b"vary", b"Accept-Language"))
        elif path.endswith("/error"):
            status = 500
        elif path.endswith("/missing"):
            status = 404
        size = 5000 if path.endswith("/big") else 0
        body = json.dumps({"path": req.target, "call": self.calls, "pad": "x" * size}).encode()
        writer.write(ok_response(body, status, headers))


@pytest.fixture
async def origin() -> AsyncIterator[tuple[Origin, HttpUpstream]]:
    handler = Origin()
    up = await HttpUpstream(handler).start()
    yield handler, up
    await up.close()


async def cache_gateway(up: HttpUpstream, resources: PluginResources | None = None,
                        **config: Any) -> RunningGateway:
    config.setdefault("max_body_bytes", 4096)
    return await start_gateway({"services": [service(
        "s", f"http://{up.address}", plugins=[{"name": "proxy-cache", "config": config}])]},
        resources=resources)


async def fetch(port: int, *requests: tuple[str, str, list[tuple[bytes, bytes]]]
                ) -> list[Response]:
    client = await RawClient.connect(port)
    try:
        return [await client.request(m, p, h) for m, p, h in requests]
    finally:
        await client.close()


def get(path: str, *headers: tuple[bytes, bytes]) -> tuple[str, str, list[tuple[bytes, bytes]]]:
    return ("GET", path, list(headers))


async def test_second_get_is_a_hit_with_the_same_answer(
        origin: tuple[Origin, HttpUpstream]) -> None:
    handler, up = origin
    gw = await cache_gateway(up)
    try:
        first, second, head = await fetch(gw.port, get("/s/a?b=2&a=1"), get("/s/a?a=1&b=2"),
                                          ("HEAD", "/s/a?a=1&b=2", []))
    finally:
        await gw.close()
    assert handler.calls == 1
    assert (first.header("x-cache-status"), second.header("x-cache-status")) == ("Miss", "Hit")
    assert second.body == first.body and second.status == 200
    assert second.header("content-type") == "application/json"
    assert second.header("x-up") == "1"
    assert second.header("age") is not None and int(second.header("age") or -1) >= 0
    assert second.header("x-request-id") != first.header("x-request-id")
    assert head.header("x-cache-status") == "Hit" and head.body == b""
    assert head.header("content-length") == str(len(first.body))


@pytest.mark.parametrize("path", ["/s/html", "/s/cookie", "/s/private", "/s/vary", "/s/error"])
async def test_uncacheable_responses_are_not_stored(
        path: str, origin: tuple[Origin, HttpUpstream]) -> None:
    handler, up = origin
    gw = await cache_gateway(up)
    try:
        answers = await fetch(gw.port, get(path), get(path))
    finally:
        await gw.close()
    assert handler.calls == 2
    assert [a.header("x-cache-status") for a in answers] == ["Bypass", "Bypass"]


async def test_a_404_is_stored_and_other_methods_bypass(
        origin: tuple[Origin, HttpUpstream]) -> None:
    handler, up = origin
    gw = await cache_gateway(up)
    try:
        answers = await fetch(gw.port, get("/s/missing"), get("/s/missing"),
                              ("DELETE", "/s/missing", []))
    finally:
        await gw.close()
    assert [a.status for a in answers] == [404, 404, 404]
    assert [a.header("x-cache-status") for a in answers] == ["Miss", "Hit", "Bypass"]
    assert handler.calls == 2


async def test_vary_headers_are_part_of_the_key(origin: tuple[Origin, HttpUpstream]) -> None:
    handler, up = origin
    gw = await cache_gateway(up, vary_headers=["Accept-Language"])
    try:
        answers = await fetch(gw.port, get("/s/vary", (b"accept-language", b"fr")),
                              get("/s/vary", (b"accept-language", b"de")),
                              get("/s/vary", (b"accept-language", b"fr")))
    finally:
        await gw.close()
    assert [a.header("x-cache-status") for a in answers] == ["Miss", "Miss", "Hit"]
    assert answers[2].body == answers[0].body
    assert handler.calls == 2


async def test_large_responses_stream_and_are_not_stored(
        origin: tuple[Origin, HttpUpstream], caplog: pytest.LogCaptureFixture) -> None:
    handler, up = origin
    gw = await cache_gateway(up)
    try:
        with caplog.at_level(logging.WARNING):
            answers = await fetch(gw.port, get("/s/big"), get("/s/big"))
    finally:
        await gw.close()
    assert [a.header("x-cache-status") for a in answers] == ["Miss", "Miss"]
    assert json.loads(answers[1].body)["call"] == 2
    assert handler.calls == 2
    assert not caplog.records  # not storing a large response is no reason to warn


async def test_client_cache_control_when_honoured(origin: tuple[Origin, HttpUpstream]) -> None:
    handler, up = origin
    gw = await cache_gateway(up, cache_control=True)
    try:
        answers = await fetch(gw.port, get("/s/a"), get("/s/a", (b"cache-control", b"no-cache")),
                              get("/s/a"), get("/s/a", (b"cache-control", b"no-store")),
                              get("/s/fresh0"), get("/s/fresh0"))
    finally:
        await gw.close()
    assert [a.header("x-cache-status") for a in answers] == [
        "Miss", "Refresh", "Hit", "Bypass", "Bypass", "Bypass"]
    assert json.loads(answers[2].body)["call"] == 2  # the refreshed entry
    assert handler.calls == 5


async def test_client_cache_control_is_ignored_by_default(
        origin: tuple[Origin, HttpUpstream]) -> None:
    handler, up = origin
    gw = await cache_gateway(up)
    try:
        answers = await fetch(gw.port, get("/s/a"), get("/s/a", (b"cache-control", b"no-cache")))
    finally:
        await gw.close()
    assert [a.header("x-cache-status") for a in answers] == ["Miss", "Hit"]
    assert handler.calls == 1


async def test_hits_get_header_transforms_once_and_body_transforms_kept(
        origin: tuple[Origin, HttpUpstream]) -> None:
    handler, up = origin
    gw = await start_gateway({"services": [service("s", f"http://{up.address}", plugins=[
        {"name": "proxy-cache"},
        {"name": "response-transformer",
         "config": {"append": {"headers": {"x-t": "1"}, "json": {"tags": "t"}}}}])]})
    try:
        miss, hit = await fetch(gw.port, get("/s/a"), get("/s/a"))
    finally:
        await gw.close()
    assert hit.header("x-cache-status") == "Hit"
    assert miss.header_all("x-t") == hit.header_all("x-t") == ["1"]
    assert json.loads(hit.body)["tags"] == ["t"] == json.loads(miss.body)["tags"]
    assert handler.calls == 1


# ---------------------------------------------------------------- Redis


@pytest.fixture
def prefix() -> str:
    return f"cgtest:{secrets.token_hex(6)}:"


@pytest.fixture
async def redis_resources(prefix: str) -> AsyncIterator[PluginResources]:
    shared = RedisState(SHARED_REDIS, prefix)
    memory = MemoryState()
    resources = PluginResources(Keyring.generate(), memory, shared, asyncio.get_running_loop())
    yield resources
    client = RespClient.from_url(SHARED_REDIS)
    keys = await client.execute(b"KEYS", prefix + "*")
    if isinstance(keys, list) and keys:
        await client.execute(b"DEL", *[k for k in keys if isinstance(k, bytes)])
    await client.close()
    await resources.close()


async def wait_stored(prefix: str, count: int) -> None:
    """Stores to Redis happen after the answer: wait until ``count`` entries exist."""
    client = RespClient.from_url(SHARED_REDIS)
    try:
        for _ in range(200):
            keys = await client.execute(b"KEYS", prefix + "*")
            if isinstance(keys, list) and len(keys) >= count:
                return
            await asyncio.sleep(0.01)
    finally:
        await client.close()
    raise AssertionError("the entry never reached Redis")


@pytest.mark.parametrize("strategy", ["redis", "default"])
async def test_redis_strategy_shares_entries(strategy: str, origin: tuple[Origin, HttpUpstream],
                                             redis_resources: PluginResources,
                                             prefix: str) -> None:
    handler, up = origin
    gw = await cache_gateway(up, redis_resources, strategy=strategy, ttl=30)
    try:
        (first,) = await fetch(gw.port, get("/s/r"))
        await wait_stored(prefix, 1)
        second, head = await fetch(gw.port, get("/s/r"), ("HEAD", "/s/r", []))
    finally:
        await gw.close()
    assert [a.header("x-cache-status") for a in (first, second, head)] == ["Miss", "Hit", "Hit"]
    assert second.body == first.body
    assert handler.calls == 1


async def test_an_unreachable_store_bypasses_and_never_fails_the_request(
        origin: tuple[Origin, HttpUpstream], caplog: pytest.LogCaptureFixture) -> None:
    handler, up = origin
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    memory = MemoryState()
    resources = PluginResources(Keyring.generate(), memory,
                                RedisState(f"redis://127.0.0.1:{port}/0", "x:"),
                                asyncio.get_running_loop())
    gw = await cache_gateway(up, resources, strategy="redis")
    try:
        answers = await fetch(gw.port, *[get("/s/a")] * 5)
    finally:
        await gw.close()
        await resources.close()
    assert [a.status for a in answers] == [200] * 5
    assert {a.header("x-cache-status") for a in answers} == {"Bypass"}
    assert handler.calls == 5
    # one warning for the outage, not one per request
    warnings = [r for r in caplog.records if "proxy-cache" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"


async def test_the_redis_strategy_needs_a_redis_state() -> None:
    up = await HttpUpstream().start()
    try:
        with pytest.raises(ValueError, match="redis://"):
            await cache_gateway(up, strategy="redis")
    finally:
        await up.close()


async def test_consumers_do_not_share_entries_unless_configured(
        origin: tuple[Origin, HttpUpstream]) -> None:
    """On an authenticated route one consumer is never served another's answer."""
    handler, up = origin
    consumers = [{"name": n, "credentials": [{"type": "key-auth", "key": f"{n}-key-0123456789"}]}
                 for n in ("ann", "ben")]

    def gateway(**config: Any) -> Any:
        config.setdefault("max_body_bytes", 4096)
        return start_gateway({"services": [service("s", f"http://{up.address}", plugins=[
            {"name": "key-auth"}, {"name": "proxy-cache", "config": config}])],
            "consumers": consumers})

    def as_(who: str) -> tuple[str, str, list[tuple[bytes, bytes]]]:
        return get("/s/report", (b"apikey", f"{who}-key-0123456789".encode()))

    gw = await gateway()
    try:
        answers = await fetch(gw.port, as_("ann"), as_("ben"), as_("ann"))
    finally:
        await gw.close()
    assert [a.header("x-cache-status") for a in answers] == ["Miss", "Miss", "Hit"]
    assert handler.calls == 2
    shared = await gateway(cache_key=["method", "host", "path", "query"])
    try:
        answers = await fetch(shared.port, as_("ann"), as_("ben"))
    finally:
        await shared.close()
    assert [a.header("x-cache-status") for a in answers] == ["Miss", "Hit"]

"""rate-limit: load-time checks, whose counter a request goes on, 429s and headers with
the memory and the Redis backend, failing open or closed when Redis is down, and the
gateway enforcing it."""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway_harness import HttpUpstream, RawClient, http, service, start_gateway
from pydantic import ValidationError
from redis_servers import SHARED_REDIS, free_port

from campusgate.config.loader import ConfigError, load_config_text
from campusgate.config.model import PluginSpec
from campusgate.keyring import Keyring
from campusgate.plugins.base import WAIT, PluginEnv, PluginResources
from campusgate.plugins.rate_limit import RateLimitPlugin, WarningThrottle
from campusgate.plugins.registry import build_plugin, default_resources
from campusgate.proxy.consumers import ConsumerInfo
from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext
from campusgate.state.memory import MemoryState
from campusgate.state.redis import RedisState
from campusgate.state.resp import RespClient

LOGGER = "campusgate.plugins.rate_limit"


def consumer(name: str, anonymous: bool = False) -> ConsumerInfo:
    return ConsumerInfo(f"id-{name}", name, None, (), (), anonymous)


def ctx(peer: str = "192.0.2.1", headers: HeaderList | None = None,
        who: ConsumerInfo | None = None, credential: str | None = None) -> RequestContext:
    request = RequestContext("GET", "/x", "", headers or [], peer, "http", "h", "rid-1")
    request.consumer, request.credential = who, credential
    return request


def limit(scope: str = "route:r", resources: PluginResources | None = None,
          **config: Any) -> RateLimitPlugin:
    config.setdefault("limits", [{"window": "1m", "limit": 3}])
    env = PluginEnv(resources or default_resources(), scope)
    made = build_plugin("rate-limit", config, env)
    assert isinstance(made, RateLimitPlugin)
    return made


def admitted(plugin: RateLimitPlugin, request: RequestContext) -> bool:
    answer = plugin.access_now(request)
    assert answer is not WAIT
    if answer is None:
        return True
    assert isinstance(answer, LocalResponse) and answer.status == 429
    return False


# ---------------------------------------------------------------- load-time checks


@pytest.mark.parametrize("config, fault", [
    ({}, "limits"),
    ({"limits": []}, "at least 1"),
    ({"limits": [{"window": "1x", "limit": 3}]}, "bad window '1x'"),
    ({"limits": [{"window": "0m", "limit": 3}]}, "bad window"),
    ({"limits": [{"window": "1m", "limit": 0}]}, "greater than or equal to 1"),
    ({"limits": [{"window": "1m"}]}, "limit"),
    ({"limits": [{"window": "1m", "limit": 3, "burst": 2}]}, "burst"),
    ({"limits": [{"window": "1m", "limit": 3}, {"window": "60s", "limit": 9}]},
     "1m and 60s are the same length"),
    ({"limits": [{"window": "200mo", "limit": 3}]}, "seconds must be"),
    ({"limits": [{"window": "1m", "limit": 3}], "by": "header"}, "header_name is required"),
    ({"limits": [{"window": "1m", "limit": 3}], "header_name": "x-team"},
     "header_name is required with by: header, and only then"),
    ({"limits": [{"window": "1m", "limit": 3}], "by": "header", "header_name": "x team"},
     "not a valid header name"),
    ({"limits": [{"window": "1m", "limit": 3}], "by": "cookie"}, "by"),
    ({"limits": [{"window": "1m", "limit": 3}], "algorithm": "leaky-bucket"}, "algorithm"),
    ({"limits": [{"window": "1m", "limit": 3}], "backend": "postgres"}, "backend"),
    ({"limits": [{"window": "1m", "limit": 3}], "on_error": "ignore"}, "on_error"),
    ({"limits": [{"window": "1m", "limit": 3}, {"window": "1h", "limit": 10}], "cost": 4},
     "cost 4 is more than the limit 3"),
    ({"limits": [{"window": "1m", "limit": 3}], "cost": 0}, "cost"),
])
def test_bad_config_fails_when_the_config_loads(config: dict[str, Any], fault: str) -> None:
    with pytest.raises(ValidationError, match=fault):
        PluginSpec(name="rate-limit", config=config)


def test_a_redis_backend_needs_a_redis_state_setting() -> None:
    text = ("plugins:\n  - name: rate-limit\n    config:\n      backend: redis\n"
            "      limits: [{window: 1m, limit: 5}]\n")
    with pytest.raises(ConfigError, match="state"):
        load_config_text(text, source="test")
    loaded = load_config_text("state: redis://127.0.0.1:6379/0\n" + text, source="test")
    assert [spec.name for _, spec in loaded.plugin_specs()] == ["rate-limit"]


def test_windows_and_policy_are_computed_once() -> None:
    plugin = limit(limits=[{"window": "1s", "limit": 5}, {"window": "1mo", "limit": 1000}])
    assert isinstance(plugin.windows, tuple)
    assert [(w.name, w.limit, w.seconds) for w in plugin.windows] == [
        ("1s", 5, 1.0), ("1mo", 1000, 30 * 86400.0)]
    assert plugin.policy == b'"1s";q=5;w=1, "1mo";q=1000;w=2592000'


# ---------------------------------------------------------------- whose counter


PROXY_HEADERS = [(b"x-forwarded-for", b"203.0.113.9, 10.0.0.2")]


@pytest.mark.parametrize("config, request_, key", [
    ({}, ctx(who=consumer("alice")), "route:r|consumer=alice"),
    ({}, ctx(), "route:r|ip=192.0.2.1"),  # no consumer: the client address
    ({}, ctx(who=consumer("guest", anonymous=True)), "route:r|ip=192.0.2.1"),
    ({"by": "credential"}, ctx(who=consumer("alice"), credential="alice-key"),
     "route:r|credential=alice-key"),
    ({"by": "credential"}, ctx(who=consumer("alice")), "route:r|ip=192.0.2.1"),
    ({"by": "ip"}, ctx(who=consumer("alice")), "route:r|ip=192.0.2.1"),
    ({"by": "ip"}, ctx("::ffff:192.0.2.7"), "route:r|ip=192.0.2.7"),
    # X-Forwarded-For only counts from a trusted proxy
    ({"by": "ip"}, ctx("198.51.100.1", PROXY_HEADERS), "route:r|ip=198.51.100.1"),
    ({"by": "ip"}, ctx("10.0.0.1", PROXY_HEADERS), "route:r|ip=203.0.113.9"),
    ({"by": "header", "header_name": "X-Team"}, ctx(headers=[(b"x-team", b"physics")]),
     "route:r|header=physics"),
    ({"by": "header", "header_name": "X-Team"}, ctx(headers=[(b"x-team", b"")]),
     "route:r|ip=192.0.2.1"),
    ({"by": "header", "header_name": "X-Team"}, ctx(headers=[(b"x-team", b"  ")]),
     "route:r|ip=192.0.2.1"),
    ({"by": "header", "header_name": "X-Team"}, ctx(), "route:r|ip=192.0.2.1"),
    # long or odd values are hashed: a client cannot make huge keys
    ({"by": "header", "header_name": "X-Team"}, ctx(headers=[(b"x-team", b"a" * 65)]),
     "route:r|header#"),
    ({"by": "header", "header_name": "X-Team"}, ctx(headers=[(b"x-team", b"a b")]),
     "route:r|header#"),
])
def test_key(config: dict[str, Any], request_: RequestContext, key: str) -> None:
    resources = default_resources()
    resources.trusted_proxies = (ipaddress.ip_network("10.0.0.0/8"),)
    found = limit(resources=resources, **config).key(request_)
    if key.endswith("#"):
        assert found.startswith(key) and len(found) == len(key) + 32  # a hex digest
    else:
        assert found == key


def test_long_header_values_hash_to_distinct_keys() -> None:
    plugin = limit(by="header", header_name="x-team")
    one = plugin.key(ctx(headers=[(b"x-team", b"a" * 65)]))
    two = plugin.key(ctx(headers=[(b"x-team", b"a" * 64 + b"b")]))
    assert one != two


def test_route_and_service_without_a_route_fall_back_to_the_address() -> None:
    assert limit(scope="global", by="route").key(ctx()) == "global|ip=192.0.2.1"
    assert limit(scope="global", by="service").key(ctx()) == "global|ip=192.0.2.1"


async def test_gateway_by_route_and_by_service() -> None:
    """A global limit by route: one counter per route, shared by every client; by
    service: the service's routes share one."""
    up = await HttpUpstream().start()
    url = f"http://{up.address}"
    two_routes = {"name": "s", "url": url, "routes": [{"name": "s1", "paths": ["/s1"]},
                                                        {"name": "s2", "paths": ["/s2"]}]}
    for by, expected in (("route", [200, 200, 429, 429, 200]),
                         ("service", [200, 429, 429, 429, 200])):
        plugin = {"name": "rate-limit",
                  "config": {"by": by, "limits": [{"window": "1h", "limit": 1}]}}
        gw = await start_gateway({"plugins": [plugin],
                                  "services": [two_routes, service("t", url)]})
        try:
            statuses = [(await http(gw.port, "GET", path)).status
                        for path in ("/s1", "/s2", "/s1", "/s2", "/t")]
            assert statuses == expected, by
        finally:
            await gw.close()
    await up.close()


# ---------------------------------------------------------------- memory


async def test_admits_the_limit_then_429_with_headers() -> None:
    plugin = limit(limits=[{"window": "1m", "limit": 3}, {"window": "1h", "limit": 100}])
    assert not plugin.waits
    remaining = []
    for _ in range(3):
        request = ctx()
        assert plugin.access_now(request) is None
        headers = dict(request.response_headers_add)
        assert headers[b"ratelimit-policy"] == b'"1m";q=3;w=60, "1h";q=100;w=3600'
        remaining.append(headers[b"ratelimit"].split(b";")[1])
    assert remaining == [b"r=2", b"r=1", b"r=0"]
    request = ctx()
    answer = plugin.access_now(request)
    assert isinstance(answer, LocalResponse) and answer.status == 429
    assert json.loads(answer.body) == {"error": {
        "code": "rate_limited", "message": "API rate limit exceeded", "request_id": "rid-1"}}
    headers = dict(answer.headers)
    assert headers[b"ratelimit-policy"] == b'"1m";q=3;w=60, "1h";q=100;w=3600'
    assert headers[b"ratelimit"].startswith(b'"1m";r=0;t=')
    assert 1 <= int(headers[b"retry-after"]) <= 120  # within two fixed windows
    assert request.response_headers_add == []  # the 429 carries them, not twice


async def test_token_bucket_admits_the_burst_then_refuses() -> None:
    plugin = limit(algorithm="token-bucket", limits=[{"window": "1h", "limit": 5}])
    results = [admitted(plugin, ctx()) for _ in range(7)]
    assert results == [True] * 5 + [False] * 2


async def test_headers_off_sends_only_retry_after_on_the_429() -> None:
    plugin = limit(headers=False, error_message="slow down, please")
    request = ctx()
    for _ in range(3):
        assert plugin.access_now(request) is None
    assert request.response_headers_add == []
    answer = plugin.access_now(ctx())
    assert isinstance(answer, LocalResponse)
    assert [name for name, _ in answer.headers] == [b"retry-after"]
    assert json.loads(answer.body)["error"]["message"] == "slow down, please"


async def test_cost_counts_units() -> None:
    plugin = limit(cost=2, limits=[{"window": "1m", "limit": 5}])
    assert [admitted(plugin, ctx()) for _ in range(3)] == [True, True, False]


async def test_counters_are_per_identity() -> None:
    plugin = limit(limits=[{"window": "1m", "limit": 1}])
    assert admitted(plugin, ctx(who=consumer("alice")))
    assert not admitted(plugin, ctx(who=consumer("alice")))
    assert admitted(plugin, ctx(who=consumer("bob")))
    assert admitted(plugin, ctx("192.0.2.50"))  # unauthenticated, by address
    assert not admitted(plugin, ctx("192.0.2.50"))


async def test_the_scope_separates_counters_and_a_global_limit_spans_routes() -> None:
    resources = default_resources()
    one = {"limits": [{"window": "1m", "limit": 1}]}
    route_a = limit("route:a", resources, **one)
    route_b = limit("route:b", resources, **one)
    assert admitted(route_a, ctx(who=consumer("alice")))
    assert admitted(route_b, ctx(who=consumer("alice")))  # its own counter
    assert not admitted(route_a, ctx(who=consumer("alice")))
    everywhere = limit("global", resources, **one)
    first, second = ctx(who=consumer("alice")), ctx(who=consumer("alice"))
    first.path, second.path = "/a", "/b"
    assert admitted(everywhere, first)
    assert not admitted(everywhere, second)  # same consumer, any route


async def test_counters_survive_a_new_plugin_instance() -> None:
    """A config reload builds new instances; the worker's state keeps the counts."""
    resources = default_resources()
    assert admitted(limit(resources=resources, limits=[{"window": "1m", "limit": 1}]), ctx())
    assert not admitted(limit(resources=resources, limits=[{"window": "1m", "limit": 1}]),
                        ctx())


async def test_memory_backend_chosen_explicitly_beside_a_redis_state() -> None:
    memory = MemoryState()
    redis = RedisState(f"redis://127.0.0.1:{free_port()}/0")
    resources = PluginResources(Keyring.generate(), memory, redis, default_resources().loop)
    try:
        plugin = limit(resources=resources, backend="memory")
        assert plugin.state is memory and not plugin.waits
        assert admitted(plugin, ctx())
    finally:
        await redis.close()


# ---------------------------------------------------------------- redis


@pytest.fixture
def prefix() -> str:
    return f"cgtest:{secrets.token_hex(6)}:"


@pytest.fixture
async def redis_resources(prefix: str) -> AsyncIterator[PluginResources]:
    """Resources whose shared state is the Redis on 127.0.0.1:6379 under ``prefix``."""
    memory = MemoryState()
    resources = PluginResources(Keyring.generate(), memory, RedisState(SHARED_REDIS, prefix),
                                default_resources().loop)
    yield resources
    await resources.close()
    client = RespClient.from_url(SHARED_REDIS)
    keys = await client.execute(b"KEYS", prefix + "*")
    if isinstance(keys, list) and keys:
        await client.execute(b"DEL", *[k for k in keys if isinstance(k, bytes)])
    await client.close()


@pytest.mark.parametrize("algorithm", ["sliding-window", "token-bucket"])
async def test_redis_admits_the_limit_then_429(
        redis_resources: PluginResources, prefix: str, algorithm: str) -> None:
    plugin = limit(resources=redis_resources, algorithm=algorithm,
                   limits=[{"window": "1h", "limit": 4}, {"window": "1d", "limit": 50}])
    assert plugin.waits and plugin.access_now(ctx()) is WAIT
    answers = [await plugin.access(ctx(who=consumer("alice"))) for _ in range(6)]
    assert [a is None for a in answers] == [True] * 4 + [False] * 2
    refused = answers[-1]
    assert refused is not None and refused.status == 429
    headers = dict(refused.headers)
    assert headers[b"ratelimit-policy"] == b'"1h";q=4;w=3600, "1d";q=50;w=86400'
    assert headers[b"ratelimit"].startswith(b'"1h";r=0;t=')
    assert int(headers[b"retry-after"]) >= 1
    client = RespClient.from_url(SHARED_REDIS)
    try:
        assert await client.execute(b"EXISTS", f"{prefix}rl:route:r|consumer=alice") == 1
    finally:
        await client.close()


async def test_redis_counts_are_shared_by_instances_on_other_connections(
        redis_resources: PluginResources, prefix: str) -> None:
    """Two workers are two plugin instances with a connection each: one counter."""
    other = PluginResources(Keyring.generate(), MemoryState(), RedisState(SHARED_REDIS, prefix),
                            default_resources().loop)
    try:
        one = limit(resources=redis_resources, limits=[{"window": "1h", "limit": 2}])
        two = limit(resources=other, limits=[{"window": "1h", "limit": 2}])
        assert await one.access(ctx()) is None
        assert await two.access(ctx()) is None
        assert await one.access(ctx()) is not None
        assert await two.access(ctx()) is not None
    finally:
        await other.close()


def unreachable() -> PluginResources:
    memory = MemoryState()
    return PluginResources(Keyring.generate(), memory,
                           RedisState(f"redis://127.0.0.1:{free_port()}/0"),
                           default_resources().loop)


async def test_redis_down_fails_open_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    resources = unreachable()
    try:
        plugin = limit(resources=resources)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            for _ in range(5):
                request = ctx()
                assert await plugin.access(request) is None
                assert request.response_headers_add == []
        warnings = [r for r in caplog.records if r.name == LOGGER]
        assert len(warnings) == 1
        assert "route:r" in warnings[0].getMessage()
        assert "admitting" in warnings[0].getMessage()
    finally:
        await resources.close()


async def test_redis_down_fails_closed_with_a_503() -> None:
    resources = unreachable()
    try:
        plugin = limit(resources=resources, on_error="deny")
        answer = await plugin.access(ctx())
        assert isinstance(answer, LocalResponse) and answer.status == 503
        assert json.loads(answer.body)["error"]["code"] == "rate_limit_unavailable"
        assert answer.headers == [(b"retry-after", b"1")]
    finally:
        await resources.close()


async def test_the_warning_repeats_after_the_interval_with_the_count(
        caplog: pytest.LogCaptureFixture) -> None:
    resources = unreachable()
    now = [100.0]
    try:
        plugin = limit(resources=resources, on_error="deny")
        plugin.throttle = WarningThrottle(10.0, lambda: now[0])
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            for step in (0.0, 1.0, 1.0, 1.0, 7.5):  # t = 100, 101, 102, 103, 110.5
                now[0] += step
                await plugin.access(ctx())
        messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
        assert len(messages) == 2
        assert "refusing" in messages[0] and "more failures" not in messages[0]
        assert "(3 more failures since the last warning)" in messages[1]
    finally:
        await resources.close()


@pytest.mark.parametrize("times, warned", [
    ([0.0], [0]),
    ([0.0, 5.0, 9.99], [0]),
    ([0.0, 5.0, 10.0], [0, 1]),
    ([0.0, 1.0, 2.0, 30.0, 31.0, 40.0], [0, 2, 1]),
])
def test_warning_throttle(times: list[float], warned: list[int]) -> None:
    clock = iter(times)
    throttle = WarningThrottle(10.0, lambda: next(clock))
    assert [held for held in (throttle.due() for _ in times) if held is not None] == warned


# ---------------------------------------------------------------- through the gateway


def limited(up: HttpUpstream, route: str, **config: Any) -> dict[str, Any]:
    config.setdefault("limits", [{"window": "1h", "limit": 3}])
    made: dict[str, Any] = service(
        route, f"http://{up.address}",
        route={"plugins": [{"name": "rate-limit", "config": config}]})
    return made


async def test_gateway_limits_each_route_on_its_own() -> None:
    up = await HttpUpstream().start()
    gw = await start_gateway({"services": [limited(up, "a"), limited(up, "b")]})
    try:
        answers = [await http(gw.port, "GET", "/a/x") for _ in range(5)]
        assert [r.status for r in answers] == [200, 200, 200, 429, 429]
        assert answers[0].header("ratelimit-policy") == '"1h";q=3;w=3600'
        assert str(answers[0].header("ratelimit")).startswith('"1h";r=2;t=')
        assert answers[0].header("x-request-id")
        refused = answers[-1]
        assert refused.header("retry-after") is not None
        assert json.loads(refused.body)["error"]["code"] == "rate_limited"
        assert len(up.requests) == 3
        assert (await http(gw.port, "GET", "/b/x")).status == 200  # route b: its own
    finally:
        await gw.close()
        await up.close()


async def test_gateway_global_limit_counts_a_consumer_across_routes() -> None:
    up = await HttpUpstream().start()
    key = "k-alice-0123456789"
    entities = {
        "plugins": [{"name": "key-auth"},
                    {"name": "rate-limit", "config": {"limits": [{"window": "1h",
                                                                  "limit": 2}]}}],
        "services": [service("a", f"http://{up.address}"), service("b", f"http://{up.address}")],
        "consumers": [{"name": "alice", "credentials": [{"type": "key-auth", "key": key}]}]}
    gw = await start_gateway(entities)
    try:
        auth = [(b"x-api-key", key.encode())]
        statuses = [(await http(gw.port, "GET", path, auth)).status
                    for path in ("/a/x", "/b/x", "/a/x", "/b/x")]
        assert statuses == [200, 200, 429, 429]
    finally:
        await gw.close()
        await up.close()


async def test_gateway_with_redis(redis_resources: PluginResources) -> None:
    up = await HttpUpstream().start()
    gw = await start_gateway({"services": [limited(up, "a", algorithm="token-bucket")]},
                             resources=redis_resources)
    try:
        statuses = [(await http(gw.port, "GET", "/a/x")).status for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
    finally:
        await gw.close()
        await up.close()


async def test_gateway_with_redis_down_fails_open_or_closed() -> None:
    up = await HttpUpstream().start()
    resources = unreachable()
    gw = await start_gateway({"services": [limited(up, "open"),
                                           limited(up, "closed", on_error="deny")]},
                             resources=resources)
    try:
        for _ in range(3):
            assert (await http(gw.port, "GET", "/open/x")).status == 200
            closed = await http(gw.port, "GET", "/closed/x")
            assert closed.status == 503
            assert closed.header("retry-after") == "1"
        assert len(up.requests) == 3
    finally:
        await gw.close()
        await up.close()
        await resources.close()


async def test_gateway_limit_attached_to_a_consumer() -> None:
    up = await HttpUpstream().start()
    one = {"name": "rate-limit", "config": {"limits": [{"window": "1h", "limit": 1}]}}
    entities = {
        "services": [service("a", f"http://{up.address}", plugins=[{"name": "key-auth"}])],
        "consumers": [
            {"name": "alice", "plugins": [one],
             "credentials": [{"type": "key-auth", "key": "k-alice-0123456789"}]},
            {"name": "bob", "credentials": [{"type": "key-auth", "key": "k-bob-0123456789"}]}]}
    gw = await start_gateway(entities)
    try:
        alice = [(b"x-api-key", b"k-alice-0123456789")]
        bob = [(b"x-api-key", b"k-bob-0123456789")]
        statuses = [(await http(gw.port, "GET", "/a/x", who)).status
                    for who in (alice, bob, alice, bob, bob)]
        assert statuses == [200, 200, 429, 200, 200]
    finally:
        await gw.close()
        await up.close()


async def test_gateway_with_redis_answers_on_the_callback_path_once_connected(
        redis_resources: PluginResources, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a Redis connection open, a check is one command whose reply resumes the
    request by callbacks: no task.  The first request opens the connection (a task)."""
    from campusgate.proxy.gateway import Gateway

    tasks: list[str] = []
    original = Gateway.handle

    async def counting(self: Gateway, conn: Any, req: Any) -> None:
        tasks.append(req.path)
        await original(self, conn, req)

    monkeypatch.setattr(Gateway, "handle", counting)
    up = await HttpUpstream().start()
    gw = await start_gateway({"services": [limited(up, "a", limits=[
        {"window": "1h", "limit": 4}])]}, resources=redis_resources)
    try:
        client = await RawClient.connect(gw.port)
        statuses = []
        for n in range(6):
            answer = await client.request("GET", f"/a/{n}")
            statuses.append(answer.status)
        await client.close()
        assert statuses == [200, 200, 200, 200, 429, 429]
        # the first (connecting) and the 429s (answered by the task path) used tasks;
        # the admitted ones after the first did not
        assert tasks == ["/a/0", "/a/4", "/a/5"]
        assert len(up.requests) == 4
    finally:
        await gw.close()
        await up.close()

"""The response cache over real sockets: httpx -> campusgate's proxy (key-auth
consumers) -> a scripted OpenAI-wire provider.  A repeat is a hit without a provider
call, in the OpenAI and the Anthropic shape; consumers are kept apart; no-cache and
no-store; streams are never cached; answers expire; a state that is down still serves."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ai_shell_kit import AiGateway, FakeProvider, Seen, completion, sse, start_ai_gateway

from campusgate.ai.cache import ResponseCache
from campusgate.config.ai import AiCache
from campusgate.state.base import StateUnavailable
from campusgate.state.memory import MemoryState

#: The callers' key-auth headers, by consumer.
ADA, BOB = ({"apikey": f"{who}-key-000000001"} for who in ("ada", "bob"))


def answer(seen: Seen) -> tuple[int, dict[str, str], list[bytes | float | None]]:
    """A stream for a stream, else a whole answer (usage 5 + 2)."""
    streamed = bool(seen.json().get("stream"))
    kind = "text/event-stream" if streamed else "application/json"
    return 200, {"content-type": kind}, sse("a", "b") if streamed else [completion("ok")]


def entities(url: str, cache: dict[str, Any],
             budgets: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "ai": {
            "providers": [{"name": "p0", "type": "openai", "base_url": url,
                           "api_key": "sk-test-0"}],
            "models": [{"name": "gpt-fast", "targets": [{"provider": "p0", "model": "m0"}]}],
            "plugins": [{"name": "key-auth", "config": {"key_names": ["apikey"]}}],
            "cache": {"enabled": True, **cache}, "budgets": budgets or []},
        "consumers": [
            {"name": "ada", "credentials": [{"type": "key-auth", "key": ADA["apikey"]}]},
            {"name": "bob", "credentials": [{"type": "key-auth", "key": BOB["apikey"]}]}]}


@pytest.fixture
async def gateway_of() -> AsyncIterator[tuple[FakeProvider, Any]]:
    """The provider, and a maker of gateways in front of it (closed afterwards)."""
    async with contextlib.AsyncExitStack() as stack:
        provider = await FakeProvider(answer).start()
        stack.push_async_callback(provider.close)

        async def start(cache: dict[str, Any], **more: Any) -> AiGateway:
            gateway = await start_ai_gateway(entities(provider.url, cache, **more))
            stack.push_async_callback(gateway.close)
            return gateway

        yield provider, start


@pytest.fixture
def fake(gateway_of: tuple[FakeProvider, Any]) -> FakeProvider:
    return gateway_of[0]


def chat(content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-fast", "messages": [{"role": "user", "content": content}],
            "temperature": 0.9, **extra}


def message() -> dict[str, Any]:
    return {"model": "gpt-fast", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]}


async def test_a_repeat_is_a_hit_without_a_provider_call(
        fake: FakeProvider, gateway_of: Any) -> None:
    gateway = await gateway_of[1]({})
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        first = await client.post("/v1/chat/completions", json=chat(), headers=ADA)
        second = await client.post("/v1/chat/completions", json=chat(user="x"),
                                   headers=ADA)
        m1 = await client.post("/v1/messages", json=message(), headers=ADA)
        m2 = await client.post("/v1/messages", json=message(), headers=ADA)
    assert [first.headers["x-cache"], second.headers["x-cache"]] == ["miss", "hit"]
    assert second.json() == first.json()
    assert second.json()["model"] == "gpt-fast"
    assert second.json()["usage"]["total_tokens"] == 7
    assert [m1.headers["x-cache"], m2.headers["x-cache"]] == ["miss", "hit"]
    assert m2.json() == m1.json() and m2.json()["type"] == "message"
    assert m2.json()["content"][0]["text"] == "ok"
    assert len(fake.seen) == 2  # one per distinct request


async def test_consumers_are_kept_apart_unless_global(
        fake: FakeProvider, gateway_of: Any) -> None:
    per_consumer = await gateway_of[1]({})
    shared = await gateway_of[1]({"scope": "global"})
    for gateway, calls in ((per_consumer, 2), (shared, 1)):
        fake.seen.clear()
        async with httpx.AsyncClient(base_url=gateway.url) as client:
            await client.post("/v1/chat/completions", json=chat(), headers=ADA)
            bob = await client.post("/v1/chat/completions", json=chat(), headers=BOB)
        assert len(fake.seen) == calls
        assert bob.headers["x-cache"] == ("miss" if calls == 2 else "hit")


async def test_no_cache_and_no_store(fake: FakeProvider, gateway_of: Any) -> None:
    gateway = await gateway_of[1]({})
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        post = client.post
        store = await post("/v1/chat/completions", json=chat("a"),
                           headers={**ADA, "cache-control": "no-store"})
        after_store = await post("/v1/chat/completions", json=chat("a"), headers=ADA)
        fresh = await post("/v1/chat/completions", json=chat("a"),
                           headers={**ADA, "cache-control": "no-cache"})
        hit = await post("/v1/chat/completions", json=chat("a"), headers=ADA)
    assert [r.headers["x-cache"] for r in (store, after_store, fresh, hit)] == \
        ["miss", "miss", "miss", "hit"]
    assert len(fake.seen) == 3


async def test_streams_are_never_cached(fake: FakeProvider, gateway_of: Any) -> None:
    gateway = await gateway_of[1]({})
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        for _ in range(2):
            streamed = await client.post("/v1/chat/completions", json=chat(stream=True),
                                         headers=ADA)
            assert streamed.status_code == 200 and "x-cache" not in streamed.headers
            assert "data: [DONE]" in streamed.text
        whole = await client.post("/v1/chat/completions", json=chat(), headers=ADA)
    assert whole.headers["x-cache"] == "miss"  # the streams stored nothing
    assert len(fake.seen) == 3


async def test_answers_expire(fake: FakeProvider, gateway_of: Any) -> None:
    gateway = await gateway_of[1]({"ttl": 0.2})
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        await client.post("/v1/chat/completions", json=chat(), headers=ADA)
        hit = await client.post("/v1/chat/completions", json=chat(), headers=ADA)
        await asyncio.sleep(0.3)
        expired = await client.post("/v1/chat/completions", json=chat(), headers=ADA)
    assert (hit.headers["x-cache"], expired.headers["x-cache"]) == ("hit", "miss")
    assert len(fake.seen) == 2


class Down(MemoryState):
    async def get(self, key: str) -> bytes | None:
        raise StateUnavailable("cannot connect to redis")

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        raise StateUnavailable("cannot connect to redis")


async def test_a_state_that_is_down_is_a_miss_warned_once(
        caplog: pytest.LogCaptureFixture) -> None:
    cache = ResponseCache(Down)
    for _ in range(3):
        assert await cache.get("aic:1") is None
        assert not await cache.put(AiCache(enabled=True), "aic:1", {"choices": []})
    warnings = [r for r in caplog.records if "AI cache cannot be" in r.getMessage()]
    assert len(warnings) == 1


async def test_a_state_that_is_down_still_serves(
        fake: FakeProvider, gateway_of: Any) -> None:
    gateway = await gateway_of[1]({})
    gateway.runtime.cache.state = Down
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        answers = [await client.post("/v1/chat/completions", json=chat(), headers=ADA)
                   for _ in range(2)]
    assert [(r.status_code, r.headers["x-cache"]) for r in answers] == \
        [(200, "miss"), (200, "miss")]
    assert len(fake.seen) == 2


async def test_a_hit_counts_one_request_but_no_tokens(
        fake: FakeProvider, gateway_of: Any) -> None:
    gateway = await gateway_of[1]({}, budgets=[
        {"name": "ada-tok", "consumer": "ada", "period": "day", "tokens": 10},
        {"name": "ada-req", "consumer": "ada", "period": "day", "requests": 2}])
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        miss = await client.post("/v1/chat/completions", json=chat(), headers=ADA)
        hit = await client.post("/v1/chat/completions", json=chat(), headers=ADA)
        refused = await client.post("/v1/chat/completions", json=chat(), headers=ADA)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
    # 7 tokens charged once: a second 7 would have made 'ada-tok' (checked first) refuse
    assert refused.status_code == 429 and "'ada-req'" in refused.json()["error"]["message"]
    assert len(fake.seen) == 1


async def test_a_hit_is_accounted_as_cached_with_its_usage_and_no_cost(
        fake: FakeProvider, gateway_of: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from campusgate.ai.gateway import chat as chat_module

    accounted: list[dict[str, Any]] = []
    write_json = chat_module.write_json

    def spy(conn: Any, req: Any, ctx: Any, *rest: Any) -> None:
        accounted.append(dict(ctx.vars["ai"]))
        write_json(conn, req, ctx, *rest)

    monkeypatch.setattr(chat_module, "write_json", spy)
    gateway = await gateway_of[1]({})
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        for _ in range(2):
            await client.post("/v1/chat/completions", json=chat(), headers=ADA)
    miss, hit = accounted
    assert miss["cached"] is False and miss["provider"] == "p0"
    assert hit["cached"] is True and hit["cost"] == "0" and hit["attempts"] == 0
    assert hit["usage"] == miss["usage"] and hit["usage"]["total_tokens"] == 7
    assert hit["model"] == "gpt-fast" and hit["provider"] is None


async def test_two_workers_share_answers_through_redis(
        fake: FakeProvider, gateway_of: Any) -> None:
    from redis_servers import SHARED_REDIS

    from campusgate.state.redis import RedisState

    redis = RedisState(SHARED_REDIS, f"cgtest:{secrets.token_hex(6)}:")
    workers = [await gateway_of[1]({"ttl": 5}) for _ in range(2)]
    for worker in workers:
        worker.runtime.cache.state = lambda: redis
    try:
        answers = []
        for worker in workers:
            async with httpx.AsyncClient(base_url=worker.url) as client:
                answers.append(await client.post("/v1/chat/completions", json=chat(),
                                                 headers=ADA))
    finally:
        await redis.close()
    assert [r.headers["x-cache"] for r in answers] == ["miss", "hit"]
    assert answers[1].json() == answers[0].json() and len(fake.seen) == 1

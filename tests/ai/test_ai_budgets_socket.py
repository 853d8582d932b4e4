"""Budgets over real sockets: httpx -> campusgate's proxy with consumers (key-auth) ->
a scripted OpenAI-wire provider.  A budget used up is a 429 in the client's API shape
and no provider call; streams are charged, also when their client leaves; a model's
budget is shared by every consumer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ai_shell_kit import AiGateway, FakeProvider, Seen, completion, sse, start_ai_gateway

JSON = {"content-type": "application/json"}
EVENTS = {"content-type": "text/event-stream"}
ADA = {"apikey": "ada-key-000000001"}
BOB = {"apikey": "bob-key-000000001"}
Answer = tuple[int, dict[str, str], list[bytes | float | None]]


def answer(seen: Seen) -> Answer:
    request = seen.json()
    if request["messages"][-1]["content"] == "long":
        return 200, EVENTS, [*sse("a")[:2], *[0.05, b": ping\n\n"] * 100]
    if request.get("stream"):
        return 200, EVENTS, sse("a", "b")  # usage 5 + 2
    return 200, JSON, [completion("ok")]  # usage 5 + 2


def entities(url: str, budgets: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ai": {
            "providers": [{"name": "p0", "type": "openai", "base_url": url,
                           "api_key": "sk-test-0"}],
            "models": [{"name": "gpt-fast", "targets": [{"provider": "p0", "model": "m0"}]},
                       {"name": "gpt-big", "targets": [{"provider": "p0", "model": "m1"}]}],
            "plugins": [{"name": "key-auth", "config": {"key_names": ["apikey"]}}],
            "budgets": budgets},
        "consumers": [
            {"name": "ada", "groups": ["staff"],
             "credentials": [{"type": "key-auth", "key": ADA["apikey"]}]},
            {"name": "bob", "credentials": [{"type": "key-auth", "key": BOB["apikey"]}]}],
        "consumer_groups": [{"name": "staff"}]}


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    server = await FakeProvider(answer).start()
    yield server
    await server.close()


@pytest.fixture
async def gateway_of(fake: FakeProvider) -> AsyncIterator[Any]:
    made: list[AiGateway] = []

    async def start(budgets: list[dict[str, Any]]) -> AiGateway:
        made.append(await start_ai_gateway(entities(fake.url, budgets)))
        return made[-1]

    yield start
    for gateway in made:
        await gateway.close()


def chat(content: str = "hi", model: str = "gpt-fast", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def message(model: str = "gpt-fast") -> dict[str, Any]:
    return {"model": model, "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]}


async def test_a_consumer_over_its_daily_tokens_is_refused_in_each_shape(
        fake: FakeProvider, gateway_of: Any) -> None:
    gateway = await gateway_of([{"name": "ada-daily", "consumer": "ada", "period": "day",
                                 "tokens": 7}])
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        first = await client.post("/v1/chat/completions", json=chat(), headers=ADA)
        refused = await client.post("/v1/chat/completions", json=chat(), headers=ADA)
        anthropic = await client.post("/v1/messages", json=message(), headers=ADA)
        other = await client.post("/v1/chat/completions", json=chat(), headers=BOB)
    assert first.status_code == 200 and other.status_code == 200
    assert len(fake.seen) == 2  # ada's first call and bob's: no call for the refusals
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "budget_exceeded"
    assert "budget 'ada-daily' (daily, 7 tokens) is used up; it resets at " in \
        error["message"]
    assert error["message"].endswith("T00:00:00Z")
    assert 1 <= int(refused.headers["retry-after"]) <= 86400
    assert anthropic.status_code == 429
    body = anthropic.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "'ada-daily'" in body["error"]["message"]


async def test_a_streams_tokens_are_charged(fake: FakeProvider, gateway_of: Any) -> None:
    gateway = await gateway_of([{"name": "staff-rpm", "group": "staff", "period": "minute",
                                 "tokens": 7, "requests": 100}])
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        streamed = await client.post("/v1/chat/completions", json=chat(stream=True),
                                     headers=ADA)
        refused = await client.post("/v1/chat/completions", json=chat(stream=True),
                                    headers=ADA)
    assert streamed.status_code == 200 and "data: [DONE]" in streamed.text
    assert refused.status_code == 429 and "(per minute, 7 tokens)" in refused.text
    assert len(fake.seen) == 1


async def test_a_stream_left_by_its_client_is_charged(
        fake: FakeProvider, gateway_of: Any) -> None:
    gateway = await gateway_of([{"name": "ada-rpm", "consumer": "ada", "period": "minute",
                                 "requests": 1}])
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        async with client.stream("POST", "/v1/chat/completions",
                                 json=chat("long", stream=True), headers=ADA) as r:
            async for _ in r.aiter_bytes():
                break
        await asyncio.wait_for(fake.aborted.wait(), 3)
        for _ in range(50):
            refused = await client.post("/v1/chat/completions", json=chat(), headers=ADA)
            if refused.status_code == 429:
                break
            await asyncio.sleep(0.02)
    assert refused.status_code == 429
    assert "(per minute, 1 requests)" in refused.json()["error"]["message"]


async def test_a_model_budget_applies_to_every_consumer(
        fake: FakeProvider, gateway_of: Any) -> None:
    gateway = await gateway_of([{"name": "big-monthly", "model": "gpt-big",
                                 "period": "month", "requests": 2}])
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        codes = [(await client.post("/v1/chat/completions", json=chat(model=model),
                                    headers=who)).status_code
                 for who, model in ((ADA, "gpt-big"), (BOB, "gpt-big"), (ADA, "gpt-big"),
                                    (BOB, "gpt-big"), (BOB, "gpt-fast"))]
        embed = await client.post("/v1/embeddings", json={"model": "gpt-big", "input": "x"},
                                  headers=ADA)
    assert codes == [200, 200, 429, 429, 200]
    assert embed.status_code == 429
    assert [s.json()["model"] for s in fake.seen] == ["m1", "m1", "m0"]

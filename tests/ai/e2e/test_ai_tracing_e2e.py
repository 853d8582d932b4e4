"""W3C Trace Context on the AI path: the provider gets a ``traceparent`` naming the
caller's trace (or a new one) with the gateway's span as its parent, on every call,
though the deployment's request head is cached."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from ai_shell_kit import AiGateway, FakeProvider, Seen, completion, start_ai_gateway

TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def answer(seen: Seen) -> tuple[int, dict[str, str], list[bytes | float | None]]:
    if seen.path.endswith("/embeddings"):
        return 200, {"content-type": "application/json"}, [
            b'{"object":"list","data":[{"index":0,"embedding":[0.5]}],'
            b'"usage":{"prompt_tokens":1,"total_tokens":1}}']
    return 200, {"content-type": "application/json"}, [completion("ok")]


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeProvider, AiGateway]]:
    provider = await FakeProvider(answer).start()
    gateway = await start_ai_gateway({"ai": {
        "providers": [{"name": "p0", "type": "openai", "base_url": provider.url,
                       "api_key": "sk-test-0"}],
        "models": [{"name": "gpt-fast", "targets": [{"provider": "p0", "model": "m0"}]}]}})
    try:
        yield provider, gateway
    finally:
        await gateway.close()
        await provider.close()


async def test_the_provider_gets_the_callers_trace_with_the_gateways_span(
        served: tuple[FakeProvider, AiGateway]) -> None:
    provider, gateway = served
    chat = {"model": "gpt-fast", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        joined = await client.post("/v1/chat/completions", json=chat,
                                   headers={"traceparent": CALLER})
        fresh = await client.post("/v1/chat/completions", json=chat)
        embedded = await client.post("/v1/embeddings", json={"model": "gpt-fast",
                                                             "input": "x"})
    assert joined.status_code == fresh.status_code == embedded.status_code == 200
    sent = [TRACEPARENT.fullmatch(seen.headers["traceparent"]) for seen in provider.seen]
    assert all(sent), [seen.headers.get("traceparent") for seen in provider.seen]
    first, second, third = (m.groups() for m in sent if m)
    # the caller's trace continues; the parent is the gateway's span, not the caller's
    assert first[0] == "4bf92f3577b34da6a3ce929d0e0e4736" and first[1] != "00f067aa0ba902b7"
    assert first[2] == "01"
    # without a caller's trace each call starts its own; the head cache never mixes them
    assert len({first[0], second[0], third[0]}) == 3
    assert len({first[1], second[1], third[1]}) == 3

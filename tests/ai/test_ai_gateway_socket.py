"""The ``builtin://ai`` backend over real sockets: httpx -> campusgate's proxy ->
a scripted OpenAI-wire server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from ai_shell_kit import (
    AiGateway,
    FakeProvider,
    Handler,
    Seen,
    completion,
    sse,
    start_ai_gateway,
)

JSON = {"content-type": "application/json"}
EVENTS = {"content-type": "text/event-stream"}


def ai_section(*urls: str, **extra: Any) -> dict[str, Any]:
    """Providers p0, p1... at ``urls``; model gpt-fast served by p0 then p1."""
    providers = [{"name": f"p{i}", "type": "openai", "base_url": url,
                  "api_key": f"sk-test-{i}"} for i, url in enumerate(urls)]
    targets = [{"provider": f"p{i}", "model": f"m{i}", "weight": 1} for i in range(len(urls))]
    models = [{"name": "gpt-fast", "targets": targets[:1],
               "fallbacks": ["gpt-backup"] if len(urls) > 1 else []}]
    if len(urls) > 1:
        models.append({"name": "gpt-backup", "targets": targets[1:]})
    return {"providers": providers, "models": models, **extra}


Start = Callable[..., Any]


@pytest.fixture
async def setup() -> AsyncIterator[Start]:
    made: list[FakeProvider | AiGateway] = []

    async def start(*handlers: Handler, entities: dict[str, Any] | None = None,
                    **extra: Any) -> tuple[AiGateway, list[FakeProvider]]:
        fakes = [await FakeProvider(h).start() for h in handlers]
        made.extend(fakes)
        gateway = await start_ai_gateway(
            entities or {"ai": ai_section(*(f.url for f in fakes), **extra)})
        made.append(gateway)
        return gateway, fakes

    yield start
    for item in made:
        await item.close()


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-fast", "messages": [{"role": "user", "content": "hi"}], **extra}


async def test_a_completion_is_relayed_under_the_clients_model_name(setup: Start) -> None:
    gateway, (fake,) = await setup(lambda seen: (200, JSON, [completion("hello")]))
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{gateway.url}/v1/chat/completions", json=chat())
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "gpt-fast"
    assert body["choices"][0]["message"]["content"] == "hello"
    assert body["usage"]["total_tokens"] == 7
    assert r.headers["x-request-id"]
    upstream = fake.seen[0]
    assert upstream.path == "/v1/chat/completions"
    assert upstream.headers["authorization"] == "Bearer sk-test-0"
    assert upstream.json()["model"] == "m0"


async def test_a_stream_is_reencoded_without_usage_unless_asked(setup: Start) -> None:
    gateway, (fake,) = await setup(lambda seen: (200, EVENTS, sse("Hel", "lo")))
    async with httpx.AsyncClient() as client:
        plain = await client.post(f"{gateway.url}/v1/chat/completions",
                                  json=chat(stream=True))
        with_usage = await client.post(
            f"{gateway.url}/v1/chat/completions",
            json=chat(stream=True, stream_options={"include_usage": True}))
    assert plain.headers["content-type"].startswith("text/event-stream")
    events = [e.removeprefix("data: ") for e in plain.text.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello"
    assert all(c["model"] == "gpt-fast" and c["choices"] for c in chunks)
    assert fake.seen[0].json()["stream_options"] == {"include_usage": True}
    usage = [json.loads(e[6:]) for e in with_usage.text.split("\n\n")
             if e.startswith("data: {")]
    assert usage[-1]["choices"] == [] and usage[-1]["usage"]["completion_tokens"] == 2


async def test_pieces_are_written_as_they_arrive(setup: Start) -> None:
    async def slow(seen: Seen) -> tuple[int, dict[str, str], list[bytes | float | None]]:
        pieces = sse("first", "second")
        return 200, EVENTS, [*pieces[:2], 0.5, *pieces[2:]]

    gateway, _ = await setup(slow)
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient() as client, client.stream(
            "POST", f"{gateway.url}/v1/chat/completions", json=chat(stream=True)) as r:
        began = loop.time()
        seen = b""
        async for data in r.aiter_bytes():
            seen += data
            if b"first" in seen:
                break
        assert loop.time() - began < 0.4  # not held back until the stream ended


async def test_unknown_models_are_404_in_each_apis_shape(setup: Start) -> None:
    gateway, (fake,) = await setup(lambda seen: (200, JSON, [completion("x")]))
    async with httpx.AsyncClient() as client:
        openai = await client.post(f"{gateway.url}/v1/chat/completions",
                                   json=chat(model="nope"))
        anthropic = await client.post(f"{gateway.url}/v1/messages", json={
            "model": "nope", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]})
    assert openai.status_code == 404
    assert openai.json()["error"]["code"] == "model_not_found"
    assert anthropic.status_code == 404
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "not_found_error"
    assert fake.seen == []


async def test_bad_json_is_a_400_and_wrong_method_a_405(setup: Start) -> None:
    gateway, _ = await setup(lambda seen: (200, JSON, [completion("x")]))
    async with httpx.AsyncClient() as client:
        bad = await client.post(f"{gateway.url}/v1/chat/completions", content=b"{nope",
                                headers=JSON)
        wrong = await client.get(f"{gateway.url}/v1/chat/completions")
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    assert "not valid JSON" in bad.json()["error"]["message"]
    assert wrong.status_code == 405


async def test_a_failing_provider_falls_back_before_any_byte(setup: Start) -> None:
    gateway, (first, second) = await setup(
        lambda seen: (429, {**JSON, "retry-after": "20"},
                      [b'{"error": {"message": "slow down", "type": "rate_limit"}}']),
        lambda seen: (200, JSON, [completion("from backup", model="m1")]))
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{gateway.url}/v1/chat/completions", json=chat())
        again = await client.post(f"{gateway.url}/v1/chat/completions", json=chat())
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "from backup"
    assert r.json()["model"] == "gpt-fast"
    assert len(first.seen) == 1  # cooling down: the second call went to the backup only
    assert len(second.seen) == 2 and again.status_code == 200


async def test_the_last_error_keeps_the_providers_reason(setup: Start) -> None:
    gateway, _ = await setup(
        lambda seen: (400, JSON, [b'{"error": {"message": "messages is too long", '
                                  b'"type": "invalid_request_error"}}']), retries=0)
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{gateway.url}/v1/chat/completions", json=chat())
    assert r.status_code == 400
    assert "messages is too long" in r.json()["error"]["message"]


async def test_a_cut_stream_ends_with_an_error_event(setup: Start) -> None:
    gateway, _ = await setup(lambda seen: (200, EVENTS, [*sse("part")[:2], None]))
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{gateway.url}/v1/chat/completions", json=chat(stream=True))
    assert r.status_code == 200
    events = [e for e in r.text.split("\n\n") if e]
    assert '"part"' in events[1]
    last = json.loads(events[-1].removeprefix("data: "))
    assert last["error"]["type"] == "server_error"


async def test_a_client_leaving_mid_stream_aborts_the_provider_call(setup: Start) -> None:
    gateway, (fake,) = await setup(
        lambda seen: (200, EVENTS, [*sse("a")[:2], *[0.05, b": ping\n\n"] * 100]))
    async with httpx.AsyncClient() as client, client.stream(
            "POST", f"{gateway.url}/v1/chat/completions", json=chat(stream=True)) as r:
        async for _ in r.aiter_bytes():
            break
    await asyncio.wait_for(fake.aborted.wait(), 3)


async def test_messages_and_responses_answer_in_their_own_shapes(setup: Start) -> None:
    gateway, _ = await setup(lambda seen: (200, JSON, [completion("hello")]))
    async with httpx.AsyncClient() as client:
        message = await client.post(f"{gateway.url}/v1/messages", json={
            "model": "gpt-fast", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]})
        response = await client.post(f"{gateway.url}/v1/responses",
                                     json={"model": "gpt-fast", "input": "hi"})
    assert message.status_code == 200
    assert message.json()["type"] == "message"
    assert message.json()["content"] == [{"type": "text", "text": "hello"}]
    assert message.json()["model"] == "gpt-fast"
    assert response.status_code == 200
    assert response.json()["object"] == "response"
    assert response.json()["output"][0]["content"][0]["text"] == "hello"


async def test_messages_and_responses_streams_are_their_own_events(setup: Start) -> None:
    gateway, _ = await setup(lambda seen: (200, EVENTS, sse("Hi")))
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{gateway.url}/v1/messages", json={
            "model": "gpt-fast", "max_tokens": 10, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]})
        responses = await client.post(f"{gateway.url}/v1/responses", json={
            "model": "gpt-fast", "input": "hi", "stream": True})
    names = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert "content_block_delta" in names
    kinds = [line[7:] for line in responses.text.splitlines() if line.startswith("event: ")]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds


async def test_embeddings_and_the_model_list(setup: Start) -> None:
    def embed(seen: Seen) -> tuple[int, dict[str, str], list[bytes | float | None]]:
        return 200, JSON, [json.dumps({
            "object": "list", "model": "m0",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
            "usage": {"prompt_tokens": 3, "total_tokens": 3}}).encode()]

    gateway, (fake,) = await setup(embed)
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{gateway.url}/v1/embeddings",
                              json={"model": "gpt-fast", "input": "hello"})
        models = await client.get(f"{gateway.url}/v1/models")
        one = await client.get(f"{gateway.url}/v1/models/gpt-fast")
    assert r.status_code == 200
    assert r.json()["data"][0]["embedding"] == [0.1, 0.2]
    assert r.json()["model"] == "gpt-fast"
    assert fake.seen[0].path == "/v1/embeddings"
    assert [m["id"] for m in models.json()["data"]] == ["gpt-fast"]
    assert one.json()["id"] == "gpt-fast"


async def test_a_model_for_some_consumers_does_not_exist_for_others(setup: Start) -> None:
    fake = await FakeProvider(lambda seen: (200, JSON, [completion("ok")])).start()
    ai = ai_section(fake.url, plugins=[
        {"name": "key-auth", "config": {"key_names": ["authorization", "apikey"]}}])
    ai["models"].append({"name": "staff-only", "targets": [{"provider": "p0", "model": "big"}],
                         "groups": ["staff"]})
    entities = {"ai": ai, "consumers": [
        {"name": "teacher", "groups": ["staff"],
         "credentials": [{"type": "key-auth", "key": "teacher-key-0001"}]},
        {"name": "pupil", "credentials": [{"type": "key-auth", "key": "pupil-key-00001"}]}],
        "consumer_groups": [{"name": "staff"}]}
    try:
        gateway, _ = await setup(entities=entities)
        async with httpx.AsyncClient() as client:
            pupil = {"apikey": "pupil-key-00001"}
            teacher = {"authorization": "Bearer teacher-key-0001"}  # as the SDK sends it
            denied = await client.post(f"{gateway.url}/v1/chat/completions",
                                       json=chat(model="staff-only"), headers=pupil)
            allowed = await client.post(f"{gateway.url}/v1/chat/completions",
                                        json=chat(model="staff-only"), headers=teacher)
            listed = await client.get(f"{gateway.url}/v1/models", headers=pupil)
            anonymous = await client.get(f"{gateway.url}/v1/models")
    finally:
        await fake.close()
    assert denied.status_code == 404
    assert denied.json()["error"]["code"] == "model_not_found"
    assert allowed.status_code == 200
    assert fake.seen[-1].headers["authorization"] == "Bearer sk-test-0"  # not the client's
    assert [m["id"] for m in listed.json()["data"]] == ["gpt-fast"]
    assert anonymous.status_code == 401


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What each request left in ``ctx.vars["ai"]``, read in the log phase."""
    from campusgate.proxy.gateway import Gateway

    found: list[dict[str, Any]] = []
    finish = Gateway._finish

    def log_phase(self: Gateway, conn: Any, req: Any, ctx: Any, plugins: Any) -> None:
        found.append(ctx.vars.get("ai"))
        finish(self, conn, req, ctx, plugins)

    monkeypatch.setattr(Gateway, "_finish", log_phase)
    return found


async def test_usage_and_cost_are_left_for_the_access_records(
        setup: Start, records: list[dict[str, Any]]) -> None:
    fake = await FakeProvider(lambda seen: (200, JSON, [completion("ok")])).start()
    ai = ai_section(fake.url)
    ai["models"][0]["targets"][0]["model"] = "gpt-4o-mini"
    try:
        gateway, _ = await setup(entities={"ai": ai})
        async with httpx.AsyncClient() as client:
            await client.post(f"{gateway.url}/v1/chat/completions", json=chat())
    finally:
        await fake.close()
    (record,) = records
    assert record["model"] == "gpt-fast" and record["provider"] == "p0"
    assert record["provider_model"] == "gpt-4o-mini"
    assert record["usage"]["prompt_tokens"] == 5 and record["attempts"] == 1
    assert record["stream"] is False
    assert record["cost"] is not None and float(record["cost"]) > 0


async def test_a_stream_records_its_usage_and_a_left_stream_its_provider(
        setup: Start, records: list[dict[str, Any]]) -> None:
    def answer(seen: Seen) -> tuple[int, dict[str, str], list[bytes | float | None]]:
        if seen.json()["messages"][0]["content"] == "long":
            return 200, EVENTS, [*sse("a")[:2], *[0.05, b": ping\n\n"] * 100]
        return 200, EVENTS, sse("a", "b")

    gateway, (fake,) = await setup(answer)
    async with httpx.AsyncClient() as client:
        await client.post(f"{gateway.url}/v1/chat/completions", json=chat(stream=True))
        async with client.stream("POST", f"{gateway.url}/v1/chat/completions", json=chat(
                stream=True, messages=[{"role": "user", "content": "long"}])) as r:
            async for _ in r.aiter_bytes():
                break
    await asyncio.wait_for(fake.aborted.wait(), 3)
    for _ in range(50):
        if len(records) == 2:
            break
        await asyncio.sleep(0.02)
    whole, left = records
    assert whole["stream"] is True and whole["usage"]["completion_tokens"] == 2
    assert left["stream"] is True and left["provider"] == "p0" and left["attempts"] == 1

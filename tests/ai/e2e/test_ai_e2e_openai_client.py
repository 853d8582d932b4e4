"""The official ``openai`` SDK against a real ``campusgate serve`` in front of fake
OpenAI and Anthropic providers: what a consumer's client sees, and what the providers
see (ai_harness.py describes the configuration)."""

from __future__ import annotations

import json
import socket
import time
from itertools import pairwise
from typing import Any

import httpx
import openai
import pytest
from ai_harness import ALICE_KEY, BOB_KEY, PROVIDER_KEY, AiGateway, key_headers
from fake_reply import Reply, ToolCall
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

USER: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the weather in Oslo?"}]
WEATHER = ToolCall("call_w1", "get_weather", '{"city": "Oslo", "unit": "c"}')
TOOLS: list[ChatCompletionToolParam] = [{"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string"}}}}}]


def _stream(client: openai.OpenAI, model: str, **extra: Any) -> tuple[
        str, str | None, list[dict[str, str]], list[ChatCompletionChunk]]:
    """(text, last finish reason, tool calls, chunks) of one streamed completion."""
    chunks = list(client.chat.completions.create(model=model, messages=USER, stream=True,
                                                 **extra))
    text, finish = "", None
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] = call.id or slot["id"]
                if call.function is not None:
                    slot["name"] += call.function.name or ""
                    slot["arguments"] += call.function.arguments or ""
    return text, finish, [calls[i] for i in sorted(calls)], chunks


def test_plain_chat_answers_what_the_provider_said(gateway: AiGateway) -> None:
    answer = gateway.openai().chat.completions.create(model="gpt-fast", messages=USER)
    assert answer.model == "gpt-fast"
    assert answer.choices[0].message.content == "Hello from the fake provider."
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (12, 7)
    seen = gateway.main.seen[-1]
    assert seen.body["model"] == "gpt-4o-mini"
    assert seen.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert ALICE_KEY not in json.dumps(seen.headers)


def test_streamed_chat_with_and_without_usage(gateway: AiGateway) -> None:
    client = gateway.openai()
    text, finish, _, chunks = _stream(client, "gpt-fast",
                                      stream_options={"include_usage": True})
    assert (text, finish) == ("Hello from the fake provider.", "stop")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 19
    text, finish, _, chunks = _stream(client, "gpt-fast")
    assert (text, finish) == ("Hello from the fake provider.", "stop")
    assert all(chunk.usage is None for chunk in chunks)


def test_tool_calls_plain_and_streamed(gateway: AiGateway) -> None:
    client = gateway.openai()
    reply = Reply(text="", tool_calls=(WEATHER,), finish_reason="tool_calls")
    gateway.main.push(reply)
    answer = client.chat.completions.create(model="gpt-fast", messages=USER,
                                            tools=TOOLS)
    call = (answer.choices[0].message.tool_calls or [])[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert (call.id, call.function.name) == ("call_w1", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Oslo", "unit": "c"}
    assert answer.choices[0].finish_reason == "tool_calls"
    gateway.main.push(reply)
    _, finish, calls, _ = _stream(client, "gpt-fast", tools=TOOLS)
    assert finish == "tool_calls"
    assert calls == [{"id": "call_w1", "name": "get_weather",
                      "arguments": WEATHER.arguments}]


@pytest.mark.parametrize("stream", [False, True])
def test_an_anthropic_provider_behind_the_openai_api(gateway: AiGateway,
                                                     stream: bool) -> None:
    """Usage with cache reads and writes and the stop reason, translated exactly."""
    gateway.main.push(Reply(text="Checking.", tool_calls=(WEATHER,),
                            finish_reason="tool_calls", prompt_tokens=30,
                            cached_tokens=10, cache_write_tokens=5, completion_tokens=9))
    client = gateway.openai()
    if stream:
        text, finish, calls, chunks = _stream(client, "claude", tools=TOOLS,
                                              stream_options={"include_usage": True})
        usage = chunks[-1].usage
        assert calls[0]["name"] == "get_weather"
        assert json.loads(calls[0]["arguments"]) == {"city": "Oslo", "unit": "c"}
    else:
        answer = client.chat.completions.create(model="claude", messages=USER,
                                                tools=TOOLS)
        text, finish, usage = (answer.choices[0].message.content or "",
                               answer.choices[0].finish_reason, answer.usage)
        tool = (answer.choices[0].message.tool_calls or [])[0]
        assert isinstance(tool, ChatCompletionMessageFunctionToolCall)
        assert json.loads(tool.function.arguments) == {"city": "Oslo", "unit": "c"}
    assert (text, finish) == ("Checking.", "tool_calls")
    assert usage is not None and usage.prompt_tokens_details is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (30, 9)
    assert usage.prompt_tokens_details.cached_tokens == 10
    seen = gateway.main.seen[-1]
    assert seen.path == "/v1/messages" and seen.body["model"] == "claude-haiku"


def test_max_tokens_from_anthropic_is_length(gateway: AiGateway) -> None:
    gateway.main.push(Reply(text="Cut short", finish_reason="length"))
    answer = gateway.openai().chat.completions.create(model="claude", messages=USER)
    assert answer.choices[0].finish_reason == "length"


@pytest.mark.parametrize("model, failing", [("flaky", "always-429"),
                                            ("broken", "always-500")])
def test_falls_back_to_another_model_on_429_and_5xx(gateway: AiGateway, model: str,
                                                     failing: str) -> None:
    answer = gateway.openai().chat.completions.create(model=model, messages=USER)
    assert answer.choices[0].message.content == "From the backup."
    assert gateway.backup.models_seen()[-1] == "backup-model"
    assert failing in gateway.main.models_seen()


def test_a_key_the_provider_refuses_is_disabled(gateway: AiGateway) -> None:
    """The provider's 401 is the operator's problem, not the client's: the call falls
    back, and the refused key is not tried again."""
    client = gateway.openai()
    for _ in range(3):
        answer = client.chat.completions.create(model="locked", messages=USER)
        assert answer.choices[0].message.content == "From the backup."
    assert len(gateway.refused.seen) == 1
    assert gateway.refused.seen[0].headers["authorization"] == "Bearer sk-wrong"


def test_errors_come_in_openais_shape(gateway: AiGateway) -> None:
    client = gateway.openai()
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="no-such-model", messages=USER)
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as hidden:
        gateway.openai(BOB_KEY).chat.completions.create(model="staff-only", messages=USER)
    assert hidden.value.code == "model_not_found"
    assert "staff-only" in hidden.value.message
    gateway.main.push(Reply(status=400, error_message="Invalid 'messages': too long"))
    with pytest.raises(openai.BadRequestError) as upstream:
        client.chat.completions.create(model="gpt-fast", messages=USER)
    assert "Invalid 'messages': too long" in upstream.value.message
    bad = httpx.post(f"{gateway.base}/chat/completions", content=b"{not json",
                     headers={**key_headers(ALICE_KEY), "content-type": "application/json"})
    assert bad.status_code == 400
    assert set(bad.json()["error"]) >= {"message", "type"}


def test_models_lists_only_what_the_consumer_may_use(gateway: AiGateway) -> None:
    alice = {m.id for m in gateway.openai().models.list()}
    bob = {m.id for m in gateway.openai(BOB_KEY).models.list()}
    assert "staff-only" in alice and "staff-only" not in bob
    assert {"gpt-fast", "claude", "embed"} <= bob
    assert alice - bob == {"staff-only"}


def test_embeddings(gateway: AiGateway) -> None:
    client = gateway.openai()
    answer = client.embeddings.create(model="embed", input=["a", "b"])
    floats = client.embeddings.create(model="embed", input="a", encoding_format="float")
    assert [len(item.embedding) for item in answer.data] == [8, 8]
    assert answer.data[0].embedding == pytest.approx(floats.data[0].embedding)
    assert gateway.main.seen[-1].body["model"] == "text-embedding-3"


def test_a_slow_first_byte_is_waited_for(gateway: AiGateway) -> None:
    gateway.main.push(Reply(first_byte_delay=0.5))
    text, finish, _, _ = _stream(gateway.openai(), "gpt-fast")
    assert (text, finish) == ("Hello from the fake provider.", "stop")


def test_a_provider_stream_cut_midway_ends_with_an_error_event(gateway: AiGateway) -> None:
    """The client gets what was streamed, then OpenAI's error object as an event (the
    SDK raises it as an API error, not as a broken connection)."""
    gateway.main.push(Reply(text="one two three four five", cut_after=3))
    stream = gateway.openai().chat.completions.create(model="gpt-fast", messages=USER,
                                                      stream=True)
    text = ""
    with pytest.raises(openai.APIError) as cut:
        for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
    assert not isinstance(cut.value, openai.APIConnectionError)
    assert "closed the connection" in cut.value.message
    assert text == "one two "


def test_a_client_leaving_mid_stream_closes_the_provider_call(gateway: AiGateway) -> None:
    before = gateway.main.aborted
    gateway.main.push(Reply(text=" ".join(["word"] * 50), event_delay=0.1))
    port = int(gateway.served.proxy.rsplit(":", 1)[1])
    body = json.dumps({"model": "gpt-fast", "messages": USER, "stream": True}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                     b"content-type: application/json\r\nauthorization: Bearer %s\r\n"
                     b"content-length: %d\r\n\r\n%s"
                     % (ALICE_KEY.encode(), len(body), body))
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200"), first
    assert gateway.main.wait_aborted(before + 1, timeout=5)


@pytest.mark.parametrize("model", ["gpt-fast", "claude"])
def test_the_responses_api(gateway: AiGateway, model: str) -> None:
    client = gateway.openai()
    gateway.main.push(Reply(text="Forty-two.", prompt_tokens=9, completion_tokens=3))
    answer = client.responses.create(model=model, input="The answer?")
    assert answer.output_text == "Forty-two."
    assert answer.status == "completed"
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (9, 3)
    gateway.main.push(Reply(text="Forty-two.", prompt_tokens=9, completion_tokens=3))
    events = list(client.responses.create(model=model, input="The answer?", stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Forty-two."
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage is not None
    assert events[-1].response.usage.output_tokens == 3


def test_responses_api_tool_calls(gateway: AiGateway) -> None:
    gateway.main.push(Reply(text="", tool_calls=(WEATHER,), finish_reason="tool_calls"))
    answer = gateway.openai().responses.create(
        model="gpt-fast", input="Weather in Oslo?",
        tools=[{"type": "function", "name": "get_weather", "strict": False,
                "parameters": {"type": "object", "properties": {
                    "city": {"type": "string"}, "unit": {"type": "string"}}}}])
    calls = [item for item in answer.output if item.type == "function_call"]
    assert [(c.name, c.call_id) for c in calls] == [("get_weather", "call_w1")]
    assert json.loads(calls[0].arguments) == {"city": "Oslo", "unit": "c"}


def test_a_stream_falls_back_before_its_first_byte(gateway: AiGateway) -> None:
    text, finish, _, _ = _stream(gateway.openai(), "flaky")
    assert (text, finish) == ("From the backup.", "stop")


def test_a_429_with_nowhere_to_fall_back_reaches_the_client(gateway: AiGateway) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        gateway.openai().chat.completions.create(model="limited", messages=USER)
    assert "Rate limit reached for tokens" in limited.value.message
    assert limited.value.response.headers["retry-after"] == "20"


@pytest.mark.parametrize("model", ["gpt-fast", "claude"])
def test_each_piece_reaches_the_client_as_it_arrives(gateway: AiGateway, model: str) -> None:
    """No buffering: the provider pauses 0.25 s between events, and the client reads
    each word when it was sent, not all of them at the end."""
    gateway.main.push(Reply(text="one two three four", event_delay=0.25))
    started = time.monotonic()
    arrivals: list[tuple[float, str]] = []
    for chunk in gateway.openai().chat.completions.create(model=model, messages=USER,
                                                          stream=True):
        for choice in chunk.choices:
            if choice.delta.content:
                arrivals.append((time.monotonic() - started, choice.delta.content))
    assert "".join(text for _, text in arrivals) == "one two three four"
    gaps = [b - a for (a, _), (b, _) in pairwise(arrivals)]
    assert len(gaps) == 3 and min(gaps) > 0.15

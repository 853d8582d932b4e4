"""Ollama's native API (ai/providers/ollama.py, ollama_stream.py): golden requests,
responses and NDJSON streams written from ollama's docs/api.md, in every split."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ai_kit import fixture, fixture_bytes, run_stream, same_in_every_split

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers import translator
from campusgate.ai.providers.base import Deployment, StreamDecoder
from campusgate.ai.providers.ollama import OLLAMA
from campusgate.ai.providers.ollama_stream import finish_reason

LOCAL = Deployment("ollama", "llama3.2", "")


def test_registered_with_its_default_base() -> None:
    assert translator("ollama") is OLLAMA
    sent = OLLAMA.chat_request({"messages": []}, LOCAL)
    assert sent.url == "http://127.0.0.1:11434/api/chat"
    assert "authorization" not in sent.headers
    cloud = Deployment("ollama", "gpt-oss:120b", "https://ollama.com", api_key="k")
    sent = OLLAMA.chat_request({"messages": []}, cloud)
    assert (sent.url, sent.headers["authorization"]) == (
        "https://ollama.com/api/chat", "Bearer k")


def test_the_request_follows_the_api_reference() -> None:
    case = fixture("ollama", "request_chat.json")
    sent = OLLAMA.chat_request(case["canonical"], LOCAL)
    assert json.loads(sent.body) == case["ollama"]
    assert sent.stream


@pytest.mark.parametrize(("fields", "expected"), [
    ({"response_format": {"type": "json_object"}}, {"format": "json"}),
    ({"response_format": {"type": "text"}}, {}),
    ({"tool_choice": "none"}, {}),
    ({"tool_choice": "required"}, {"tools": ["a", "b"]}),
    ({"tool_choice": {"type": "function", "function": {"name": "b"}}}, {"tools": ["b"]}),
])
def test_format_and_tool_choice(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": name}} for name in ("a", "b")]
    request = {"messages": [], "tools": tools, **fields}
    if "tool_choice" not in fields:
        request.pop("tools")
    body = json.loads(OLLAMA.chat_request(request, LOCAL).body)
    got = {key: body[key] for key in ("format", "tools") if key in body}
    if "tools" in got:
        got["tools"] = [tool["function"]["name"] for tool in got["tools"]]
    assert got == expected


@pytest.mark.parametrize(("fields", "words"), [
    ({"n": 3}, "n must be 1"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}]}]}, "data:"),
    ({"messages": [{"role": "function", "content": "x"}]}, "role"),
])
def test_what_ollama_cannot_do_is_refused(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(ProviderError, match=words) as caught:
        OLLAMA.chat_request({"messages": [], **fields}, LOCAL)
    assert caught.value.kind == "bad_request"


def test_a_tool_call_response() -> None:
    case = fixture("ollama", "response_tool_calls.json")
    got = OLLAMA.chat_response(200, {}, json.dumps(case["ollama"]).encode(), LOCAL)
    got.pop("id"), got.pop("created")
    assert got == case["canonical"]


def test_tool_calls_without_ids_get_one_each() -> None:
    answer = {"message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "f", "arguments": {}}},
        {"function": {"name": "g", "arguments": {"x": 1}}}]}, "done": True}
    message = OLLAMA.chat_response(200, {}, json.dumps(answer).encode(), LOCAL)[
        "choices"][0]["message"]
    ids = [call["id"] for call in message["tool_calls"]]
    assert len(set(ids)) == 2 and all(i.startswith("call_") for i in ids)
    assert message["tool_calls"][1]["function"]["arguments"] == '{"x": 1}'


@pytest.mark.parametrize(("done_reason", "calls", "expected"), [
    ("stop", False, "stop"), ("stop", True, "tool_calls"), ("length", False, "length"),
    ("length", True, "length"), ("load", False, "stop"), ("unload", False, "stop"),
    (None, False, "stop"),
])
def test_done_reasons(done_reason: str | None, calls: bool, expected: str) -> None:
    assert finish_reason(done_reason, calls) == expected


def decoder() -> StreamDecoder:
    return OLLAMA.chat_stream(LOCAL)


@pytest.mark.parametrize(("name", "text", "calls", "finish", "tokens"), [
    ("stream_text.ndjson", "The sky is blue ☀️ because", [], "length", (26, 282)),
    ("stream_tool_calls.ndjson", "Checking.", [
        {"id": "call_w1", "name": "get_temperature", "arguments": '{"city": "New York"}'},
        {"id": "call_w2", "name": "get_conditions", "arguments": '{"city": "New York"}'}],
     "tool_calls", (181, 41)),
])
def test_streams_in_every_split(name: str, text: str, calls: list[dict[str, str]],
                                finish: str, tokens: tuple[int, int]) -> None:
    got = same_in_every_split(decoder, fixture_bytes("ollama", name))
    assert (got.text, got.tool_calls, got.finish_reason) == (text, calls, finish)
    assert got.usage == {"prompt_tokens": tokens[0], "completion_tokens": tokens[1],
                         "total_tokens": sum(tokens),
                         "prompt_tokens_details": {"cached_tokens": 0}}


def test_a_last_line_without_its_newline_still_ends_the_stream() -> None:
    data = fixture_bytes("ollama", "stream_text.ndjson").rstrip(b"\n")
    assert run_stream(decoder(), [data])[-2]["choices"][0]["finish_reason"] == "length"


def test_a_cut_stream_raises_at_finish() -> None:
    data = fixture_bytes("ollama", "stream_text.ndjson")
    stream = decoder()
    stream.feed(data[:data.rindex(b"\n{") + 20])
    with pytest.raises(ProviderError, match="cut") as caught:
        stream.finish()
    assert caught.value.kind == "bad_response" and stream.usage is None


def test_an_error_line_inside_the_stream() -> None:
    stream = decoder()
    stream.feed(b'{"message":{"role":"assistant","content":"Yes"},"done":false}\n')
    with pytest.raises(ProviderError, match="while running the model") as caught:
        stream.feed(b'{"error":"an error was encountered while running the model"}\n')
    assert caught.value.kind == "server"


@pytest.mark.parametrize(("status", "message", "kind"), [
    (400, "invalid format: expected \"json\" or a valid JSON schema", "bad_request"),
    (400, "the input length exceeds the context length", "context_length"),
    (401, "unauthorized", "auth"),
    (404, "model 'llama9' not found, try pulling it first", "not_found"),
    (429, "too many requests", "rate_limited"),
    (500, "the model failed to generate a response", "server"),
    (502, "cloud model unreachable", "server"),
    (503, "server busy, please try again.  maximum pending requests exceeded",
     "overloaded"),
])
def test_errors(status: int, message: str, kind: str) -> None:
    error = OLLAMA.error(status, {"Retry-After": "2"},
                         json.dumps({"error": message}).encode())
    assert (error.kind, error.message, error.status, error.retry_after) == (
        kind, message, status, 2.0)


def test_embeddings() -> None:
    sent = OLLAMA.embeddings_request({"model": "e", "input": "Why is the sky blue?",
                                      "dimensions": 2}, LOCAL)
    assert sent.url.endswith("/api/embed")
    assert json.loads(sent.body) == {"model": "llama3.2", "input": ["Why is the sky blue?"],
                                     "dimensions": 2}
    answer = {"model": "all-minilm", "embeddings": [[0.010071029, -0.0017594862]],
              "total_duration": 14143917, "load_duration": 1019500, "prompt_eval_count": 8}
    assert OLLAMA.embeddings_response(200, {}, json.dumps(answer).encode(), LOCAL) == {
        "object": "list", "model": "llama3.2",
        "data": [{"object": "embedding", "index": 0,
                  "embedding": [0.010071029, -0.0017594862]}],
        "usage": {"prompt_tokens": 8, "total_tokens": 8}}
    with pytest.raises(ProviderError):
        OLLAMA.embeddings_request({"input": [[1, 2, 3]]}, LOCAL)


def test_logprobs_are_asked_for_and_given_back_in_openai_shape() -> None:
    body = json.loads(OLLAMA.chat_request({"messages": [], "logprobs": True,
                                           "top_logprobs": 2}, LOCAL).body)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)
    line = {"message": {"role": "assistant", "content": "Hi"}, "done": True,
            "done_reason": "stop", "logprobs": [
                {"token": "Hi", "logprob": -0.01, "bytes": [72, 105],
                 "top_logprobs": [{"token": "Hi", "logprob": -0.01},
                                  {"token": "Hello", "logprob": -4.6}]}]}
    expected = {"content": [{"token": "Hi", "logprob": -0.01, "bytes": [72, 105],
                             "top_logprobs": [
                                 {"token": "Hi", "logprob": -0.01, "bytes": None},
                                 {"token": "Hello", "logprob": -4.6, "bytes": None}]}],
                "refusal": None}
    answer = OLLAMA.chat_response(200, {}, json.dumps(line).encode(), LOCAL)
    assert answer["choices"][0]["logprobs"] == expected
    chunks = run_stream(decoder(), [json.dumps(line).encode() + b"\n"])
    assert chunks[1]["choices"][0]["logprobs"] == expected

"""Cohere (ai/providers/cohere*.py) against golden fixtures from Cohere's Chat API v2
reference: requests, responses, streams in every split, finish reasons and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ai_kit import fixture, fixture_bytes, run_stream, same_in_every_split

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers import translator
from campusgate.ai.providers.base import Deployment
from campusgate.ai.providers.cohere import COHERE
from campusgate.ai.providers.cohere_response import finish_reason

DEPLOYMENT = Deployment(provider="cohere", model="command-a-03-2025", base_url="",
                        api_key="co-test")
USAGE_9_12 = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21,
              "prompt_tokens_details": {"cached_tokens": 0}}


def test_the_registry_finds_it() -> None:
    assert translator("cohere") is COHERE


def test_a_full_request_maps_every_field() -> None:
    case = fixture("cohere", "request_full.json")
    sent = COHERE.chat_request(case["openai"], DEPLOYMENT)
    assert (sent.method, sent.url, sent.stream) == ("POST", "https://api.cohere.com/v2/chat",
                                                    True)
    assert sent.headers["authorization"] == "Bearer co-test"
    assert json.loads(sent.body) == case["cohere"]


@pytest.mark.parametrize(("choice", "sent", "tools"), [
    ("auto", None, ["a", "b"]), ("none", "NONE", ["a", "b"]),
    ("required", "REQUIRED", ["a", "b"]),
    ({"type": "function", "function": {"name": "b"}}, "REQUIRED", ["b"])])
def test_tool_choice(choice: Any, sent: str | None, tools: list[str]) -> None:
    request = {"messages": [{"role": "user", "content": "x"}], "tool_choice": choice,
               "tools": [{"type": "function", "function": {"name": n}} for n in "ab"]}
    body = json.loads(COHERE.chat_request(request, DEPLOYMENT).body)
    assert body.get("tool_choice") == sent
    assert [t["function"]["name"] for t in body["tools"]] == tools


def test_json_mode() -> None:
    body = json.loads(COHERE.chat_request({"messages": [{"role": "user", "content": "x"}],
                                           "response_format": {"type": "json_object"}},
                                          DEPLOYMENT).body)
    assert body["response_format"] == {"type": "json_object"}
    assert "stream" not in body


@pytest.mark.parametrize("request_", [
    {"messages": [{"role": "user", "content": "x"}], "n": 3},
    {"messages": [{"role": "user", "content": "x"}],
     "tool_choice": {"type": "function", "function": {"name": "missing"}}},
    {"messages": [{"role": "user", "content": [{"type": "input_audio",
                                                "input_audio": {"data": "", "format": "wav"}}]}]},
])
def test_what_cohere_cannot_do_is_a_bad_request(request_: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as raised:
        COHERE.chat_request(request_, DEPLOYMENT)
    assert raised.value.kind == "bad_request"


@pytest.mark.parametrize("name", ["response_text.json", "response_tool_call.json"])
def test_responses(name: str) -> None:
    case = fixture("cohere", name)
    got = COHERE.chat_response(200, {}, json.dumps(case["cohere"]).encode(), DEPLOYMENT)
    got.pop("created")
    assert got == case["openai"]


def test_a_failed_generation_is_an_error() -> None:
    body = {"id": "x", "finish_reason": "ERROR", "message": {"role": "assistant"}}
    with pytest.raises(ProviderError) as raised:
        COHERE.chat_response(200, {}, json.dumps(body).encode(), DEPLOYMENT)
    assert raised.value.kind == "server"


def test_a_text_stream_in_every_split() -> None:
    got = same_in_every_split(lambda: COHERE.chat_stream(DEPLOYMENT),
                              fixture_bytes("cohere", "stream_text.sse"))
    assert got.text == "A large language model is a neural network — trained on text. 📚"
    assert got.finish_reason == "length"
    assert got.usage == USAGE_9_12
    assert got.tool_calls == []


def test_a_tool_stream_in_every_split() -> None:
    got = same_in_every_split(lambda: COHERE.chat_stream(DEPLOYMENT),
                              fixture_bytes("cohere", "stream_tool.sse"))
    assert got.text == "I will look up the weather."
    assert got.tool_calls == [
        {"id": "get_weather_1byjy32y4hvq", "name": "get_weather",
         "arguments": '{\n    "location": "Madrid"\n}'},
        {"id": "get_weather_nsz5zm3w56q3", "name": "get_weather",
         "arguments": '{"location": "Brasília"}'}]
    assert got.finish_reason == "tool_calls"
    assert got.usage == {"prompt_tokens": 37, "completion_tokens": 28, "total_tokens": 65,
                         "prompt_tokens_details": {"cached_tokens": 8}}


def test_a_cut_stream_raises_after_its_text() -> None:
    decoder = COHERE.chat_stream(DEPLOYMENT)
    chunks = decoder.feed(fixture_bytes("cohere", "stream_cut.sse"))
    with pytest.raises(ProviderError) as raised:
        decoder.finish()
    assert raised.value.kind == "bad_response" and "cut" in raised.value.message
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == \
        "A large language model "
    assert decoder.usage is None


def test_an_error_at_the_end_raises_from_feed_and_keeps_usage() -> None:
    decoder = COHERE.chat_stream(DEPLOYMENT)
    with pytest.raises(ProviderError) as raised:
        run_stream(decoder, [fixture_bytes("cohere", "stream_error.sse")])
    assert raised.value.kind == "server"
    assert raised.value.message.startswith("internal server error")
    assert decoder.usage == USAGE_9_12


@pytest.mark.parametrize(("reason", "called", "expected"), [
    ("COMPLETE", False, "stop"), ("COMPLETE", True, "tool_calls"),
    ("STOP_SEQUENCE", False, "stop"), ("MAX_TOKENS", False, "length"),
    ("MAX_TOKENS", True, "length"), ("TOOL_CALL", True, "tool_calls"),
    ("SOMETHING_NEW", False, "stop"), (None, False, "stop")])
def test_every_finish_reason(reason: str | None, called: bool, expected: str) -> None:
    assert finish_reason(reason, called) == expected


@pytest.mark.parametrize(("reason", "kind"), [("ERROR", "server"), ("TIMEOUT", "timeout")])
def test_failed_finish_reasons_raise(reason: str, kind: str) -> None:
    with pytest.raises(ProviderError) as raised:
        finish_reason(reason, False)
    assert raised.value.kind == kind


@pytest.mark.parametrize(("status", "headers", "message", "kind", "retry"), [
    (400, {}, "invalid request: message must be at least 1 token long", "bad_request",
     None),
    (400, {}, "too many tokens: total number of tokens in the prompt cannot exceed "
              "128000 - received 130012. Try using a shorter prompt", "context_length",
     None),
    (401, {}, "invalid api token", "auth", None),
    (402, {}, "Please add or update your payment method", "permission", None),
    (404, {}, "model 'command-z' not found", "not_found", None),
    (422, {}, "unprocessable entity", "bad_request", None),
    (429, {"retry-after": "12"}, "You are using a Trial key, which is limited to 10 "
                                 "API calls / minute", "rate_limited", 12.0),
    (498, {}, "invalid token", "auth", None),
    (500, {}, "internal server error", "server", None),
    (503, {}, "service unavailable", "overloaded", None),
    (504, {}, "gateway timeout", "timeout", None),
])
def test_errors(status: int, headers: dict[str, str], message: str, kind: str,
                retry: float | None) -> None:
    error = COHERE.error(status, headers, json.dumps({"id": "e1", "message": message})
                         .encode())
    assert (error.kind, error.status, error.message, error.retry_after) == (
        kind, status, message, retry)


def test_embeddings() -> None:
    sent = COHERE.embeddings_request({"input": "hello", "dimensions": 256},
                                     Deployment("cohere", "embed-v4.0", "", "k"))
    assert sent.url == "https://api.cohere.com/v2/embed"
    assert json.loads(sent.body) == {"model": "embed-v4.0", "texts": ["hello"],
                                     "input_type": "search_document",
                                     "embedding_types": ["float"], "output_dimension": 256}
    body = {"id": "da6e", "texts": ["hello"], "embeddings": {"float": [[0.016, -0.008]]},
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 1}}}
    got = COHERE.embeddings_response(200, {}, json.dumps(body).encode(), DEPLOYMENT)
    assert got == {"object": "list", "model": "command-a-03-2025",
                   "data": [{"object": "embedding", "index": 0,
                             "embedding": [0.016, -0.008]}],
                   "usage": {"prompt_tokens": 1, "total_tokens": 1}}

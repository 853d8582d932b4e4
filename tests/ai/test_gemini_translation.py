"""Gemini (ai/providers/gemini*.py) against golden fixtures from the Gemini API
reference: requests, responses, streams in every split, finish reasons and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ai_kit import assemble, fixture, fixture_bytes, run_stream, same_in_every_split

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers import translator
from campusgate.ai.providers.base import Deployment
from campusgate.ai.providers.gemini import GEMINI
from campusgate.ai.providers.gemini_response import finish_reason, gemini_usage
from campusgate.ai.providers.gemini_schema import gemini_schema

DEPLOYMENT = Deployment(provider="gemini", model="gemini-2.5-flash",
                        base_url="https://generativelanguage.googleapis.com/v1beta",
                        api_key="AIza-test")


def response(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    case = fixture("gemini", name)
    got = GEMINI.chat_response(200, {}, json.dumps(case["gemini"]).encode(), DEPLOYMENT)
    got.pop("created")
    return got, case["openai"]


def test_the_registry_finds_it() -> None:
    assert translator("gemini") is GEMINI


def test_a_full_request_maps_every_field() -> None:
    case = fixture("gemini", "request_full.json")
    sent = GEMINI.chat_request(case["openai"], DEPLOYMENT)
    assert sent.method == "POST" and not sent.stream
    assert sent.url == ("https://generativelanguage.googleapis.com/v1beta/models/"
                        "gemini-2.5-flash:generateContent")
    assert sent.headers["x-goog-api-key"] == "AIza-test"
    assert json.loads(sent.body) == case["gemini"]


def test_a_streamed_request_asks_for_sse() -> None:
    sent = GEMINI.chat_request({"messages": [{"role": "user", "content": "hi"}],
                                "stream": True}, DEPLOYMENT)
    assert sent.stream
    assert sent.url.endswith("/models/gemini-2.5-flash:streamGenerateContent?alt=sse")


@pytest.mark.parametrize(("choice", "config"), [
    ("auto", {"mode": "AUTO"}), ("none", {"mode": "NONE"}), ("required", {"mode": "ANY"})])
def test_tool_choice(choice: str, config: dict[str, Any]) -> None:
    body = json.loads(GEMINI.chat_request({"messages": [{"role": "user", "content": "x"}],
                                           "tool_choice": choice}, DEPLOYMENT).body)
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_json_mode_and_n() -> None:
    body = json.loads(GEMINI.chat_request({
        "messages": [{"role": "user", "content": "x"}], "n": 2,
        "response_format": {"type": "json_object"}}, DEPLOYMENT).body)
    assert body["generationConfig"] == {"responseMimeType": "application/json",
                                        "candidateCount": 2}


def test_a_thought_signature_goes_back_with_its_call() -> None:
    got, _ = response("response_tool_call.json")
    calls = got["choices"][0]["message"]["tool_calls"]
    body = json.loads(GEMINI.chat_request({"messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "[1, 2]"},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "{\"t\": 3}"}]},
        DEPLOYMENT).body)
    model, results = body["contents"][1:]
    assert model["parts"][0]["thoughtSignature"] == "CiQB0e2Kb+/x3w=="
    assert "thoughtSignature" not in model["parts"][1]
    assert [p["functionResponse"]["response"] for p in results["parts"]] == [
        {"result": [1, 2]}, {"t": 3}]


@pytest.mark.parametrize("request_", [
    {"messages": [{"role": "user", "content": "x"}], "n": 2, "stream": True},
    {"messages": [{"role": "tool", "tool_call_id": "nowhere", "content": "x"}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url",
                                                "image_url": {"url": "ftp://x/y.png"}}]}]},
    {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function",
     "function": {"name": "f", "parameters": {"type": "object", "properties": {
         "me": {"$ref": "#/$defs/Node"}}, "$defs": {"Node": {"type": "object",
         "properties": {"next": {"$ref": "#/$defs/Node"}}}}}}}]},
])
def test_what_gemini_cannot_do_is_a_bad_request(request_: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as raised:
        GEMINI.chat_request(request_, DEPLOYMENT)
    assert raised.value.kind == "bad_request"


@pytest.mark.parametrize("name", ["response_text.json", "response_tool_call.json"])
def test_responses(name: str) -> None:
    got, expected = response(name)
    assert got == expected


def test_a_blocked_prompt_is_a_content_filter() -> None:
    got, expected = response("response_blocked.json")
    got.pop("id")
    assert got == expected


def test_several_candidates_are_several_choices() -> None:
    body = {"candidates": [
        {"content": {"parts": [{"text": "A"}]}, "finishReason": "STOP", "index": 0},
        {"content": {"parts": [{"text": "B"}]}, "finishReason": "MAX_TOKENS", "index": 1}]}
    got = GEMINI.chat_response(200, {}, json.dumps(body).encode(), DEPLOYMENT)
    assert [(c["message"]["content"], c["finish_reason"]) for c in got["choices"]] == [
        ("A", "stop"), ("B", "length")]


def test_a_text_stream_in_every_split() -> None:
    got = same_in_every_split(lambda: GEMINI.chat_stream(DEPLOYMENT),
                              fixture_bytes("gemini", "stream_text.sse"))
    assert got.text == "Ciao! Photosynthesis makes sugar — from light. 🌱"
    assert got.finish_reason == "length"
    assert got.usage == {"prompt_tokens": 812, "completion_tokens": 52,
                         "total_tokens": 864, "prompt_tokens_details": {"cached_tokens": 512},
                         "completion_tokens_details": {"reasoning_tokens": 40}}


def test_a_tool_stream_in_every_split() -> None:
    got = same_in_every_split(lambda: GEMINI.chat_stream(DEPLOYMENT),
                              fixture_bytes("gemini", "stream_tool.sse"))
    assert got.text == "Checking both cities."
    assert got.tool_calls == [
        {"id": "call_0__thought__CiQB0e2Kb-_x3w", "name": "get_weather",
         "arguments": '{"city": "Boston"}'},
        {"id": "call_1", "name": "get_weather",
         "arguments": '{"city": "Zürich", "unit": "celsius"}'}]
    assert got.finish_reason == "tool_calls"
    assert got.usage is not None and got.usage["completion_tokens"] == 30


def test_a_blocked_stream_ends_in_content_filter() -> None:
    got = same_in_every_split(lambda: GEMINI.chat_stream(DEPLOYMENT),
                              fixture_bytes("gemini", "stream_blocked.sse"))
    assert (got.text, got.finish_reason) == ("", "content_filter")
    assert got.usage is not None and got.usage["prompt_tokens"] == 9


def test_a_cut_stream_raises_and_keeps_its_usage() -> None:
    decoder = GEMINI.chat_stream(DEPLOYMENT)
    chunks = decoder.feed(fixture_bytes("gemini", "stream_cut.sse"))
    with pytest.raises(ProviderError) as raised:
        decoder.finish()
    assert raised.value.kind == "bad_response" and "cut" in raised.value.message
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == \
        "Ciao! Photosynthesis "
    assert decoder.usage is not None and decoder.usage["completion_tokens"] == 44


def test_an_error_inside_the_stream_raises_from_feed() -> None:
    decoder = GEMINI.chat_stream(DEPLOYMENT)
    with pytest.raises(ProviderError) as raised:
        run_stream(decoder, [fixture_bytes("gemini", "stream_error.sse")])
    assert (raised.value.kind, raised.value.status) == ("overloaded", 503)
    assert raised.value.message == "The model is overloaded. Please try again later."


def test_a_stream_of_one_piece_assembles() -> None:
    chunks = run_stream(GEMINI.chat_stream(DEPLOYMENT),
                        [fixture_bytes("gemini", "stream_text.sse")])
    assert assemble(chunks).ids == {"chatcmpl-S1tream"}


@pytest.mark.parametrize(("reason", "called", "expected"), [
    ("STOP", False, "stop"), ("STOP", True, "tool_calls"), ("MAX_TOKENS", True, "length"),
    ("SAFETY", False, "content_filter"), ("RECITATION", False, "content_filter"),
    ("LANGUAGE", False, "content_filter"), ("BLOCKLIST", False, "content_filter"),
    ("PROHIBITED_CONTENT", False, "content_filter"), ("SPII", False, "content_filter"),
    ("IMAGE_SAFETY", False, "content_filter"),
    ("IMAGE_PROHIBITED_CONTENT", False, "content_filter"),
    ("IMAGE_RECITATION", False, "content_filter"), ("IMAGE_OTHER", False, "stop"),
    ("NO_IMAGE", False, "stop"), ("MALFORMED_FUNCTION_CALL", False, "stop"),
    ("UNEXPECTED_TOOL_CALL", False, "stop"), ("TOO_MANY_TOOL_CALLS", False, "stop"),
    ("MISSING_THOUGHT_SIGNATURE", False, "stop"), ("MALFORMED_RESPONSE", False, "stop"),
    ("OTHER", False, "stop"), ("FINISH_REASON_UNSPECIFIED", False, "stop"),
    ("SOMETHING_NEW", False, "stop"),
])
def test_every_finish_reason(reason: str, called: bool, expected: str) -> None:
    assert finish_reason(reason, called) == expected


def google(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "status": status,
                                 "details": list(details)}}).encode()


@pytest.mark.parametrize(("status", "headers", "body", "kind", "retry"), [
    (429, {}, google(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.",
                     {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                      "retryDelay": "37s"}), "rate_limited", 37.0),
    (429, {"Retry-After": "5"}, google(429, "RESOURCE_EXHAUSTED", "Quota"),
     "rate_limited", 5.0),
    (400, {}, google(400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds "
                     "the maximum number of tokens allowed (1048576)."),
     "context_length", None),
    (400, {}, google(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid "
                     "API key.", {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                  "reason": "API_KEY_INVALID"}), "auth", None),
    (400, {}, google(400, "INVALID_ARGUMENT", "Invalid JSON payload received."),
     "bad_request", None),
    (400, {}, google(400, "FAILED_PRECONDITION", "User location is not supported."),
     "bad_request", None),
    (401, {}, google(401, "UNAUTHENTICATED", "Request had invalid credentials."),
     "auth", None),
    (403, {}, google(403, "PERMISSION_DENIED", "Permission denied."), "permission", None),
    (404, {}, google(404, "NOT_FOUND", "models/gemini-9 is not found."), "not_found", None),
    (500, {}, google(500, "INTERNAL", "An internal error has occurred."), "server", None),
    (503, {}, google(503, "UNAVAILABLE", "The model is overloaded."), "overloaded", None),
    (504, {}, google(504, "DEADLINE_EXCEEDED", "Deadline exceeded."), "timeout", None),
    (502, {}, b"<html>Bad Gateway</html>", "server", None),
    (400, {}, b"[" + google(400, "INVALID_ARGUMENT", "bad") + b"]", "bad_request", None),
])
def test_errors(status: int, headers: dict[str, str], body: bytes, kind: str,
                retry: float | None) -> None:
    error = GEMINI.error(status, headers, body)
    assert (error.kind, error.retry_after, error.provider) == (kind, retry, "gemini")
    assert error.message in body.decode()


def test_embeddings() -> None:
    sent = GEMINI.embeddings_request({"input": ["a", "b"], "dimensions": 8,
                                      "model": "emb"},
                                     Deployment("gemini", "gemini-embedding-001", ""))
    assert sent.url == ("https://generativelanguage.googleapis.com/v1beta/models/"
                        "gemini-embedding-001:batchEmbedContents")
    assert json.loads(sent.body) == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]},
         "outputDimensionality": 8} for t in ("a", "b")]}
    got = GEMINI.embeddings_response(200, {}, json.dumps({"embeddings": [
        {"values": [0.1, -0.2]}, {"values": [0.3, 0.4]}]}).encode(), DEPLOYMENT)
    assert got == {"object": "list", "model": "gemini-2.5-flash", "data": [
        {"object": "embedding", "index": 0, "embedding": [0.1, -0.2]},
        {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]}],
        "usage": {"prompt_tokens": 0, "total_tokens": 0}}
    with pytest.raises(ProviderError):
        GEMINI.embeddings_request({"input": [[1, 2, 3]]}, DEPLOYMENT)


@pytest.mark.parametrize("event", [b"data: not json\n\n", b"data: [1]\n\n"])
def test_an_event_that_is_not_an_object_is_a_bad_response(event: bytes) -> None:
    with pytest.raises(ProviderError) as raised:
        GEMINI.chat_stream(DEPLOYMENT).feed(event)
    assert raised.value.kind == "bad_response"


def test_usage_counts_tool_use_prompts_as_input_and_thoughts_as_output() -> None:
    # Gemini's totalTokenCount is prompt + toolUsePrompt + candidates + thoughts (the
    # defect LiteLLM fixed in BerriAI/litellm#24622): nothing lost, nothing twice.
    got = gemini_usage({"promptTokenCount": 500, "candidatesTokenCount": 120,
                        "toolUsePromptTokenCount": 300, "thoughtsTokenCount": 10,
                        "cachedContentTokenCount": 256, "totalTokenCount": 930})
    assert got == {"prompt_tokens": 800, "completion_tokens": 130, "total_tokens": 930,
                   "prompt_tokens_details": {"cached_tokens": 256},
                   "completion_tokens_details": {"reasoning_tokens": 10}}


def test_schemas_lose_only_what_gemini_refuses() -> None:
    assert gemini_schema({
        "type": "object", "additionalProperties": False, "title": "Ask",
        "properties": {
            "when": {"anyOf": [{"type": "string", "format": "date-time"},
                               {"type": "null"}], "default": None},
            "many": {"type": ["integer", "string"]},
            "tags": {"type": "array", "items": {"allOf": [{"$ref": "#/definitions/Tag"}],
                                                "description": "a tag"}}},
        "definitions": {"Tag": {"type": "string", "examples": ["x"], "maxLength": 9}},
    }) == {
        "type": "object", "title": "Ask",
        "properties": {
            "when": {"nullable": True, "type": "string", "format": "date-time",
                     "default": None},
            "many": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 9,
                                                "description": "a tag"}}}}


def test_audio_and_file_parts_are_inline_data() -> None:
    body = json.loads(GEMINI.chat_request({"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}},
    ]}]}, DEPLOYMENT).body)
    assert body["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}]

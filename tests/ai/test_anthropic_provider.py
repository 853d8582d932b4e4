"""The Anthropic provider (ai/providers/anthropic*.py): requests, answers and errors
against golden fixtures from the Messages API reference, and the mapping tables."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ai_kit import fixture

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers import translator
from campusgate.ai.providers.anthropic import ANTHROPIC
from campusgate.ai.providers.anthropic_request import JSON_OBJECT_INSTRUCTION
from campusgate.ai.providers.base import Deployment

DEPLOYMENT = Deployment("anthropic", "claude-sonnet-4-5", "https://api.anthropic.com",
                        api_key="sk-ant-test")


def body_of(request: dict[str, Any], deployment: Deployment = DEPLOYMENT) -> Any:
    return json.loads(ANTHROPIC.chat_request(request, deployment).body)


def user(text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


def test_the_registry_finds_it() -> None:
    assert translator("anthropic") is ANTHROPIC


def test_a_full_request_matches_the_golden_body() -> None:
    case = fixture("anthropic", "request_tools_images.json")
    sent = ANTHROPIC.chat_request(case["canonical"], DEPLOYMENT)
    assert sent.method == "POST" and sent.url == "https://api.anthropic.com/v1/messages"
    assert sent.stream
    assert sent.headers == {"content-type": "application/json",
                            "anthropic-version": "2023-06-01", "x-api-key": "sk-ant-test"}
    assert json.loads(sent.body) == case["anthropic"]


def test_options_set_version_headers_and_default_max_tokens() -> None:
    deployment = Deployment("anthropic", "claude-haiku-4-5", "https://proxy.example/",
                            api_key="k", options={"anthropic_version": "2024-01-01",
                                                  "max_tokens": 1000, "headers": {
                                                      "Anthropic-Beta": "x-2025"}})
    sent = ANTHROPIC.chat_request(user(), deployment)
    assert sent.url == "https://proxy.example/v1/messages"
    assert sent.headers["anthropic-version"] == "2024-01-01"
    assert sent.headers["anthropic-beta"] == "x-2025"
    assert json.loads(sent.body)["max_tokens"] == 1000
    assert body_of(user())["max_tokens"] == 4096
    assert body_of(user(max_tokens=12))["max_tokens"] == 12


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    ("auto", None, {"type": "auto"}),
    ("none", None, {"type": "none"}),
    ("required", None, {"type": "any"}),
    ("none", False, {"type": "none"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    (None, None, None),
])
def test_tool_choice(choice: str | None, parallel: bool | None,
                     expected: dict[str, Any] | None) -> None:
    request = user(tools=[{"type": "function", "function": {"name": "f"}}])
    if choice is not None:
        request["tool_choice"] = choice
    if parallel is not None:
        request["parallel_tool_calls"] = parallel
    assert body_of(request).get("tool_choice") == expected


def test_response_formats() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}},
              "required": ["a"], "additionalProperties": False}
    body = body_of(user(response_format={"type": "json_schema", "json_schema": {
        "name": "thing", "schema": schema, "strict": True}}))
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    body = body_of(user(response_format={"type": "json_object"}))
    assert body["system"] == [{"type": "text", "text": JSON_OBJECT_INSTRUCTION}]
    assert "output_config" not in body_of(user(response_format={"type": "text"}))


def test_empty_messages_are_skipped_and_the_turns_still_alternate() -> None:
    body = body_of({"model": "m", "messages": [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": ""},
        {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text",
                                                                    "text": "b"}]}]})
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]


def test_a_pdf_file_part_is_a_document_and_cache_control_is_kept() -> None:
    body = body_of({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}},
        {"type": "text", "text": "Summarise", "cache_control": {"type": "ephemeral"}}]}]})
    assert body["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": "JVBERi0="}},
        {"type": "text", "text": "Summarise", "cache_control": {"type": "ephemeral"}}]


@pytest.mark.parametrize("request_", [
    user(n=2),
    user(logprobs=True),
    {"model": "m", "messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]},
    {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]}]},
    {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]}]},
    {"model": "m", "messages": [{"role": "function", "name": "f", "content": "x"}]},
    user(tools=[{"type": "custom", "custom": {"name": "x"}}]),
], ids=["n", "logprobs", "bad-arguments", "audio", "bmp", "function-role", "custom-tool"])
def test_what_anthropic_cannot_do_is_a_bad_request(request_: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as caught:
        ANTHROPIC.chat_request(request_, DEPLOYMENT)
    assert caught.value.kind == "bad_request"


def test_a_tool_use_answer_matches_the_golden_completion() -> None:
    case = fixture("anthropic", "response_tool_use.json")
    out = ANTHROPIC.chat_response(200, {}, json.dumps(case["anthropic"]).encode(),
                                  DEPLOYMENT)
    assert out["object"] == "chat.completion" and out["id"] == case["anthropic"]["id"]
    assert out["model"] == "claude-sonnet-4-5"
    (choice,) = out["choices"]
    assert choice["message"] == case["canonical_message"]
    assert choice["finish_reason"] == case["finish_reason"]
    assert out["usage"] == case["usage"]


def message(stop: str | None, **extra: Any) -> bytes:
    return json.dumps({"id": "msg_1", "type": "message", "role": "assistant",
                       "model": "x", "content": [{"type": "text", "text": "hi"}],
                       "stop_reason": stop, "stop_sequence": None,
                       "usage": {"input_tokens": 3, "output_tokens": 1}, **extra}).encode()


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("pause_turn", "stop"), ("refusal", "content_filter"),
    ("model_context_window_exceeded", "length"), (None, "stop"), ("brand_new", "stop"),
])
def test_every_stop_reason_maps_to_an_openai_one(stop: str | None, finish: str) -> None:
    out = ANTHROPIC.chat_response(200, {}, message(stop), DEPLOYMENT)
    assert out["choices"][0]["finish_reason"] == finish
    assert out["usage"]["prompt_tokens"] == 3 and out["usage"]["total_tokens"] == 4


def test_the_stop_sequence_is_named_in_the_choice() -> None:
    out = ANTHROPIC.chat_response(200, {}, message("stop_sequence", stop_sequence="END"),
                                  DEPLOYMENT)
    assert out["choices"][0]["stop_reason"] == "END"
    assert "stop_reason" not in ANTHROPIC.chat_response(
        200, {}, message("end_turn"), DEPLOYMENT)["choices"][0]


def error_body(kind: str, text: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": kind, "message": text},
                       "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}).encode()


@pytest.mark.parametrize(("status", "body", "kind"), [
    (400, error_body("invalid_request_error", "max_tokens: Field required"), "bad_request"),
    (400, error_body("invalid_request_error",
                     "prompt is too long: 208310 tokens > 200000 maximum"), "context_length"),
    (400, error_body("invalid_request_error", "input length and `max_tokens` exceed "
                     "context limit: 197000 + 8192 > 200000"), "context_length"),
    (400, error_body("invalid_request_error", "Your credit balance is too low to access "
                     "the Anthropic API."), "auth"),
    (401, error_body("authentication_error", "invalid x-api-key"), "auth"),
    (402, error_body("billing_error", "credit balance is too low"), "auth"),
    (403, error_body("permission_error", "not allowed"), "permission"),
    (404, error_body("not_found_error", "model: claude-9"), "not_found"),
    (413, error_body("request_too_large", "Request exceeds the maximum size"), "bad_request"),
    (429, error_body("rate_limit_error", "Number of request tokens has exceeded your "
                     "per-minute rate limit"), "rate_limited"),
    (500, error_body("api_error", "Internal server error"), "server"),
    (504, error_body("timeout_error", "Request timeout"), "timeout"),
    (529, error_body("overloaded_error", "Overloaded"), "overloaded"),
    (529, b"<html>upstream overloaded</html>", "overloaded"),
    (503, b"", "overloaded"),
    (502, b"Bad Gateway", "server"),
    (418, b"{}", "bad_request"),
])
def test_errors_map_to_kinds_and_keep_the_message(status: int, body: bytes,
                                                  kind: str) -> None:
    error = ANTHROPIC.error(status, {}, body)
    assert (error.kind, error.status, error.provider) == (kind, status, "anthropic")
    if body.startswith(b"{\"type\""):
        assert error.message == json.loads(body)["error"]["message"]
        assert error.code == json.loads(body)["error"]["type"]
    elif body:
        assert error.message == body.decode()


def test_retry_after_comes_from_the_headers() -> None:
    error = ANTHROPIC.error(429, {"retry-after": "17", "anthropic-ratelimit-requests-"
                                 "remaining": "0"}, error_body("rate_limit_error", "slow"))
    assert error.retry_after == 17.0 and error.retryable


def test_a_non_2xx_answer_raises_and_a_broken_2xx_is_a_bad_response() -> None:
    with pytest.raises(ProviderError) as caught:
        ANTHROPIC.chat_response(529, {}, error_body("overloaded_error", "Overloaded"),
                                DEPLOYMENT)
    assert caught.value.kind == "overloaded"
    for body in (b"not json", b"[]", b"{\"type\": \"message\"}"):
        with pytest.raises(ProviderError) as caught:
            ANTHROPIC.chat_response(200, {}, body, DEPLOYMENT)
        assert caught.value.kind == "bad_response"


def test_no_embeddings() -> None:
    with pytest.raises(ProviderError) as caught:
        ANTHROPIC.embeddings_request({"model": "m", "input": "x"}, DEPLOYMENT)
    assert caught.value.kind == "bad_request"

"""Bedrock Converse (ai/providers/bedrock.py): requests, responses, errors and stop
reasons against golden fixtures written from the Bedrock Runtime API reference."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from ai_kit import fixture

from campusgate.ai.errors import ProviderError
from campusgate.ai.pricing import cost
from campusgate.ai.providers import translator
from campusgate.ai.providers.base import Deployment
from campusgate.ai.providers.bedrock import BEDROCK, BedrockTranslator, finish_reason

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
KEYS = Deployment("bedrock", MODEL, "", options={
    "region": "eu-west-1", "aws_access_key_id": "AKIDEXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"})
SIGNER = BedrockTranslator(clock=lambda: datetime(2024, 5, 1, 12, tzinfo=UTC))


def test_registered() -> None:
    assert translator("bedrock") is BEDROCK


def test_the_request_body_follows_the_converse_reference() -> None:
    case = fixture("bedrock", "request_chat.json")
    sent = SIGNER.chat_request(case["canonical"], KEYS)
    assert json.loads(sent.body) == case["converse"]
    assert sent.method == "POST" and not sent.stream
    assert sent.url == ("https://bedrock-runtime.eu-west-1.amazonaws.com/model/"
                        "anthropic.claude-3-haiku-20240307-v1%3A0/converse")


def test_a_streamed_request_goes_to_converse_stream_signed() -> None:
    sent = SIGNER.chat_request({"messages": [{"role": "user", "content": "hi"}],
                                "stream": True}, KEYS)
    assert sent.stream and sent.url.endswith("/converse-stream")
    assert sent.headers["accept"] == "application/vnd.amazon.eventstream"
    assert sent.headers["x-amz-date"] == "20240501T120000Z"
    assert sent.headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/eu-west-1/bedrock/aws4_request, "
        "SignedHeaders=accept;content-type;host;x-amz-date, Signature=")


def test_session_tokens_are_signed_and_api_keys_are_bearer_tokens() -> None:
    temporary = Deployment("bedrock", MODEL, "", options={
        **KEYS.options, "aws_session_token": "TOKEN"})
    sent = SIGNER.chat_request({"messages": []}, temporary)
    assert sent.headers["x-amz-security-token"] == "TOKEN"
    assert "x-amz-security-token, Signature=" in sent.headers["authorization"]
    keyed = Deployment("bedrock", MODEL, "https://bedrock.example", api_key="ABSK-key")
    sent = BEDROCK.chat_request({"messages": []}, keyed)
    assert sent.headers["authorization"] == "Bearer ABSK-key"
    assert sent.url.startswith("https://bedrock.example/model/")
    with pytest.raises(ProviderError) as caught:
        BEDROCK.chat_request({"messages": []}, Deployment("bedrock", MODEL, ""))
    assert caught.value.kind == "auth"


@pytest.mark.parametrize(("response_format", "expected"), [
    ({"type": "json_schema", "json_schema": {"name": "grade", "description": "A grade",
      "schema": {"type": "object", "properties": {"score": {"type": "integer"}}}}},
     {"name": "grade", "description": "A grade",
      "schema": '{"type": "object", "properties": {"score": {"type": "integer"}}}'}),
    ({"type": "json_object"}, {"name": "json_object", "schema": '{"type": "object"}'}),
])
def test_response_formats_become_output_config(response_format: dict[str, Any],
                                               expected: dict[str, Any]) -> None:
    body = json.loads(SIGNER.chat_request(
        {"messages": [{"role": "user", "content": "x"}],
         "response_format": response_format}, KEYS).body)
    assert body["outputConfig"] == {"textFormat": {
        "type": "json_schema", "structure": {"jsonSchema": expected}}}


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"auto": {}}), ("required", {"any": {}}),
    ({"type": "function", "function": {"name": "f"}}, {"tool": {"name": "f"}}),
    (None, None), ("none", "no tools"),
])
def test_tool_choice(choice: Any, expected: Any) -> None:
    request: dict[str, Any] = {"messages": [{"role": "user", "content": "x"}],
                               "tools": [{"type": "function", "function": {"name": "f"}}]}
    if choice is not None:
        request["tool_choice"] = choice
    body = json.loads(SIGNER.chat_request(request, KEYS).body)
    if expected == "no tools":
        assert "toolConfig" not in body
    else:
        assert body["toolConfig"].get("toolChoice") == expected


@pytest.mark.parametrize(("request_fields", "words"), [
    ({"n": 2}, "n must be 1"),
    ({"logprobs": True}, "logprobs"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}]}, "data:"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}}]}]},
     "image/bmp"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input_audio"),
])
def test_what_converse_cannot_do_is_refused(request_fields: dict[str, Any],
                                            words: str) -> None:
    with pytest.raises(ProviderError, match=words) as caught:
        SIGNER.chat_request({"messages": [], **request_fields}, KEYS)
    assert caught.value.kind == "bad_request"


@pytest.mark.parametrize("name", ["response_text.json", "response_tool_use.json"])
def test_responses(name: str) -> None:
    case = fixture("bedrock", name)
    got = BEDROCK.chat_response(200, {"x-amzn-RequestId": "r-1"},
                                json.dumps(case["converse"]).encode(), KEYS)
    assert got.pop("id") == "chatcmpl-r-1"
    assert isinstance(got.pop("created"), int)
    assert got == case["canonical"]


@pytest.mark.parametrize(("stop_reason", "expected"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"), ("tool_use", "tool_calls"),
    ("guardrail_intervened", "content_filter"), ("content_filtered", "content_filter"),
])
def test_every_documented_stop_reason(stop_reason: str, expected: str) -> None:
    assert finish_reason(stop_reason) == expected


@pytest.mark.parametrize("stop_reason", ["malformed_model_output", "malformed_tool_use",
                                         "something_new"])
def test_malformed_output_is_an_error(stop_reason: str) -> None:
    with pytest.raises(ProviderError) as caught:
        finish_reason(stop_reason)
    assert caught.value.kind == "bad_response" and caught.value.retryable


@pytest.mark.parametrize(("status", "error_type", "message", "kind"), [
    (400, "ValidationException", "Malformed input request", "bad_request"),
    (400, "ValidationException", "Input is too long for requested model.",
     "context_length"),
    (400, "ValidationException", "prompt is too long: 210000 tokens > 200000 maximum",
     "context_length"),
    (403, "AccessDeniedException", "You don't have access to the model", "permission"),
    (403, "UnrecognizedClientException", "The security token included in the request "
     "is invalid.", "auth"),
    (403, "InvalidSignatureException", "The request signature we calculated does not "
     "match", "auth"),
    (404, "ResourceNotFoundException", "Could not resolve the foundation model",
     "not_found"),
    (408, "ModelTimeoutException", "Model has timed out", "timeout"),
    (424, "ModelErrorException", "The model returned an error", "server"),
    (429, "ThrottlingException", "Too many requests, please wait", "rate_limited"),
    (429, "ModelNotReadyException", "Model is not ready", "overloaded"),
    (400, "ServiceQuotaExceededException", "quota exceeded", "rate_limited"),
    (500, "InternalServerException", "Internal error", "server"),
    (503, "ServiceUnavailableException", "Service unavailable", "overloaded"),
    (502, "", "", "server"),
])
def test_errors(status: int, error_type: str, message: str, kind: str) -> None:
    headers = {"Retry-After": "3"}
    if error_type:
        headers["x-amzn-ErrorType"] = f"{error_type}:http://internal.amazon.com/coral/"
    body = json.dumps({"message": message}).encode() if message else b"Bad Gateway"
    error = BEDROCK.error(status, headers, body)
    assert (error.kind, error.status, error.retry_after) == (kind, status, 3.0)
    assert error.message == (message or "Bad Gateway")
    assert error.code == (error_type or None)


def test_the_error_type_may_come_in_the_body() -> None:
    error = BEDROCK.error(400, {}, b'{"__type": "com.amazon#ThrottlingException", '
                                   b'"Message": "slow down"}')
    assert (error.kind, error.message) == ("rate_limited", "slow down")
    with pytest.raises(ProviderError) as caught:
        BEDROCK.chat_response(200, {}, b'{"output": {}}', KEYS)
    assert caught.value.kind == "bad_response"


def test_cache_writes_are_told_apart_for_pricing() -> None:
    case = fixture("bedrock", "response_text.json")
    haiku = Deployment("bedrock", "us.anthropic.claude-3-5-haiku-20241022-v1:0", "",
                       api_key="k")
    got = BEDROCK.chat_response(200, {}, json.dumps(case["converse"]).encode(), haiku)
    # 30 fresh x $0.80 + 2000 read x $0.08 + 7 written x $1 + 628 out x $4, per million
    assert cost("bedrock", haiku.model, got["usage"]) == Decimal("0.002703")

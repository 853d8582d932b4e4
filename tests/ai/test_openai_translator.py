"""OpenAI, OpenAI-compatible, Mistral and Azure: requests, answers, errors and
embeddings against golden fixtures written from the providers' API references."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ai_kit import fixture

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers import translator
from campusgate.ai.providers.base import Deployment
from campusgate.ai.providers.mistral import mistral_tool_call_id

DEPLOYMENTS = {
    "openai": Deployment("openai", "gpt-4o-mini", "https://api.openai.com/v1", "sk-test"),
    "compatible": Deployment("openai-compatible", "llama-3.3-70b-versatile",
                             "https://api.groq.com/openai/v1", "gsk-test",
                             {"stream_usage": False, "headers": {"X-Extra": "1"}}),
    "azure": Deployment("azure", "gpt4o-prod", "https://campus.openai.azure.com", "az-key"),
    "mistral": Deployment("mistral", "mistral-large-latest", "https://api.mistral.ai/v1",
                          "ms-key"),
}
KIND = {"openai": "openai", "compatible": "openai-compatible", "azure": "azure",
        "mistral": "mistral"}


@pytest.mark.parametrize("name", ["openai", "compatible", "azure", "mistral"])
def test_chat_request(name: str) -> None:
    case = fixture("openai", "request_stream_tools.json")
    want = case[name]
    sent = translator(KIND[name]).chat_request(case["request"], DEPLOYMENTS[name])
    assert (sent.method, sent.url, sent.headers, sent.stream) == (
        "POST", want["url"], want["headers"], True)
    if "body" in want:
        expected = json.loads(json.dumps(want["body"]).replace(
            "MISTRAL_ID", mistral_tool_call_id("call_abc123XYZ_long")))
    else:
        expected = {**case["request"], **want["changes"]}
        if expected["messages"] == "SYSTEM":  # the developer message sent as system
            expected["messages"] = [{**case["request"]["messages"][0], "role": "system"},
                                    *case["request"]["messages"][1:]]
        for key in want.get("removed", []):
            del expected[key]
    assert json.loads(sent.body) == expected


def test_a_request_that_does_not_stream_sends_no_stream_options() -> None:
    request = {"model": "x", "messages": [{"role": "user", "content": "hi"}],
               "stream_options": {"include_usage": True}}
    sent = translator("openai").chat_request(request, DEPLOYMENTS["openai"])
    assert json.loads(sent.body) == {"model": "gpt-4o-mini", "messages": request["messages"]}
    assert sent.stream is False


def test_azure_v1_and_bearer_tokens() -> None:
    deployment = Deployment("azure", "gpt4o-prod", "https://campus.openai.azure.com", "tok",
                            {"api_version": "v1", "auth": "bearer"})
    sent = translator("azure").chat_request({"model": "x", "messages": []}, deployment)
    assert sent.url == "https://campus.openai.azure.com/openai/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer tok" and "api-key" not in sent.headers
    assert json.loads(sent.body)["model"] == "gpt4o-prod"


def test_mistral_ids_are_kept_when_valid_and_stable_otherwise() -> None:
    assert mistral_tool_call_id("D681PevKs") == "D681PevKs"
    made = mistral_tool_call_id("call_DdmO9pD3xa9XTPNJ32zg2hcA")
    assert made == mistral_tool_call_id("call_DdmO9pD3xa9XTPNJ32zg2hcA")
    assert len(made) == 9 and made.isalnum() and made != mistral_tool_call_id("call_other")


def test_mistral_refuses_logprobs_and_drops_what_it_does_not_know() -> None:
    mistral = translator("mistral")
    with pytest.raises(ProviderError) as caught:
        mistral.chat_request({"model": "x", "messages": [], "logprobs": True},
                             DEPLOYMENTS["mistral"])
    assert caught.value.kind == "bad_request"
    sent = mistral.chat_request({"model": "x", "messages": [], "store": True,
                                 "metadata": {"a": "b"}, "logit_bias": {"1": 2}},
                                DEPLOYMENTS["mistral"])
    assert json.loads(sent.body) == {"model": "mistral-large-latest", "messages": []}


@pytest.mark.parametrize("kind", ["openai", "azure", "openai-compatible"])
def test_chat_response(kind: str) -> None:
    case = fixture("openai", "response_tool_calls.json")
    got = translator(kind).chat_response(200, {}, json.dumps(case["body"]).encode(),
                                         DEPLOYMENTS["openai"])
    assert got == case["expected"]


def test_reasoning_tokens_left_out_of_completion_are_added_in() -> None:
    case = fixture("openai", "response_xai_reasoning.json")
    got = translator("openai-compatible").chat_response(
        200, {}, json.dumps(case["body"]).encode(), DEPLOYMENTS["compatible"])
    assert got["usage"] == case["usage"]
    assert got["choices"][0]["finish_reason"] == "stop"


def _answer(finish: Any, message: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"id": "c", "created": 1, "choices": [{
        "index": 0, "finish_reason": finish,
        "message": message or {"role": "assistant", "content": "x"}}]}).encode()


@pytest.mark.parametrize(("raw", "mapped"), [
    ("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls"),
    ("content_filter", "content_filter"), ("function_call", "tool_calls"),
    ("model_length", "length"), ("eos", "stop"), ("end_turn", "stop"),
    ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("safety", "content_filter"), ("refusal", "content_filter"),
    ("model_context_window_exceeded", "length"), ("something_new", "stop"), (None, "stop")])
def test_finish_reasons(raw: Any, mapped: str) -> None:
    got = translator("mistral").chat_response(200, {}, _answer(raw), DEPLOYMENTS["mistral"])
    assert got["choices"][0]["finish_reason"] == mapped


@pytest.mark.parametrize(("raw", "kind"), [
    ("error", "server"), ("abort", "server"), ("insufficient_system_resource", "overloaded")])
def test_failed_finish_reasons_raise(raw: str, kind: str) -> None:
    with pytest.raises(ProviderError) as caught:
        translator("openai-compatible").chat_response(200, {}, _answer(raw),
                                                      DEPLOYMENTS["compatible"])
    assert caught.value.kind == kind


def test_mistral_object_arguments_and_content_chunks() -> None:
    message = {"role": "assistant", "content": [
        {"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]},
        {"type": "text", "text": "Done."}],
        "tool_calls": [{"id": "abcDEF123", "function": {"name": "f", "arguments": {"a": 1}}}]}
    got = translator("mistral").chat_response(200, {}, _answer("tool_calls", message),
                                              DEPLOYMENTS["mistral"])
    assert got["choices"][0]["message"] == {
        "role": "assistant", "content": "Done.",
        "tool_calls": [{"id": "abcDEF123", "type": "function",
                        "function": {"name": "f", "arguments": '{"a": 1}'}}]}


@pytest.mark.parametrize("case", fixture("openai", "errors.json"),
                         ids=lambda c: f"{c['provider']}-{c['status']}-{c['kind']}")
def test_errors(case: dict[str, Any]) -> None:
    body = case["body"] if isinstance(case["body"], str) else json.dumps(case["body"])
    got = translator(case["provider"]).error(case["status"], case["headers"], body.encode())
    assert (got.kind, got.status, got.code, got.retry_after) == (
        case["kind"], case["status"], case["code"], case["retry_after"])
    message = case.get("message") or (case["body"].get("error") or case["body"]).get(
        "message") or json.dumps(case["body"]["detail"])
    assert got.message == message


def test_a_non_2xx_answer_raises_and_a_2xx_error_too() -> None:
    openai = translator("openai")
    with pytest.raises(ProviderError) as caught:
        openai.chat_response(429, {"retry-after": "3"}, b'{"error": {"message": "slow"}}',
                             DEPLOYMENTS["openai"])
    assert (caught.value.kind, caught.value.retry_after) == ("rate_limited", 3.0)
    with pytest.raises(ProviderError) as caught:
        openai.chat_response(200, {}, b'{"error": {"message": "upstream", "code": 502}}',
                             DEPLOYMENTS["openai"])
    assert caught.value.kind == "server" and caught.value.message == "upstream"
    for body in (b"not json", b"[]", b'{"choices": []}'):
        with pytest.raises(ProviderError) as caught:
            openai.chat_response(200, {}, body, DEPLOYMENTS["openai"])
        assert caught.value.kind == "bad_response"


def test_embeddings() -> None:
    request = {"model": "emb", "input": ["a", "b"], "dimensions": 256,
               "encoding_format": "float", "user": "u"}
    sent = translator("openai").embeddings_request(request, DEPLOYMENTS["openai"])
    assert sent.url == "https://api.openai.com/v1/embeddings"
    assert json.loads(sent.body) == {**request, "model": "gpt-4o-mini"}
    sent = translator("mistral").embeddings_request(request, DEPLOYMENTS["mistral"])
    assert json.loads(sent.body) == {"model": "mistral-large-latest", "input": ["a", "b"],
                                     "output_dimension": 256, "encoding_format": "float"}
    sent = translator("azure").embeddings_request(request, DEPLOYMENTS["azure"])
    assert sent.url == ("https://campus.openai.azure.com/openai/deployments/gpt4o-prod/"
                        "embeddings?api-version=2024-10-21")
    answer = {"object": "list", "model": "text-embedding-3-small",
              "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2]},
                       {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]}],
              "usage": {"prompt_tokens": 8, "total_tokens": 8}}
    got = translator("openai").embeddings_response(200, {}, json.dumps(answer).encode(),
                                                   DEPLOYMENTS["openai"])
    assert got == {**answer, "model": "gpt-4o-mini"}

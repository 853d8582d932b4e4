"""openai_family.canonical_response: an answer already in OpenAI's own shape is made
canonical in place (its messages kept, not rebuilt) with the very result the general
path gives; anything else takes the general path."""

from __future__ import annotations

import copy
from types import MappingProxyType
from typing import Any

import pytest

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.openai_family import canonical_response, canonical_usage

OPENAI_ANSWER: dict[str, Any] = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion",
    "created": 1741569952, "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!",
                                         "refusal": None, "annotations": []},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
              "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                            "accepted_prediction_tokens": 0,
                                            "rejected_prediction_tokens": 0}},
    "service_tier": "default", "system_fingerprint": None}


def variant(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(OPENAI_ANSWER)
    for key, value in changes.items():
        if value is ...:
            del body[key]
        else:
            body[key] = value
    return body


def general(body: dict[str, Any]) -> dict[str, Any]:
    """The general path's result (a read-only mapping is never reused)."""
    return canonical_response(MappingProxyType(copy.deepcopy(body)), "gpt-4o-mini", "openai")


CASES = {
    "openai's own": variant(),
    "no usage, no service tier": variant(usage=..., service_tier=...),
    "length, two choices": variant(choices=[
        {"index": 0, "message": {"role": "assistant", "content": "a"},
         "finish_reason": "length", "logprobs": None},
        {"message": {"role": "assistant"}, "finish_reason": "eos"}]),
    "extra top-level key": variant(provider="OpenRouter"),
    "tool calls": variant(choices=[{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": None,
        "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]}}]),
    "content parts": variant(choices=[{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": [{"type": "text", "text": "hi"}]}}]),
    "no created": variant(created=...),
    "reasoning": variant(choices=[{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "x", "reasoning_content": "because"}}]),
}


@pytest.mark.parametrize("name", CASES)
def test_the_same_answer_as_the_general_path(name: str) -> None:
    body = copy.deepcopy(CASES[name])
    got = canonical_response(body, "gpt-4o-mini", "openai")
    expected = general(CASES[name])
    if name == "no created":  # the general path stamps the time: compare the rest
        assert abs(got.pop("created") - expected.pop("created")) <= 1
    assert got == expected
    assert got["model"] == "gpt-4o-mini" and got["object"] == "chat.completion"


def test_openais_own_answer_is_reused_not_copied() -> None:
    body = variant()
    message = body["choices"][0]["message"]
    got = canonical_response(body, "gpt-4o-mini", "openai")
    assert got is body and got["choices"][0]["message"] is message
    assert "system_fingerprint" not in got  # None: dropped, as the general path does
    assert got["usage"]["total_tokens"] == 29
    assert got["usage"]["prompt_tokens_details"] == {"cached_tokens": 3, "audio_tokens": 0}


def test_an_answer_with_more_than_openais_keys_is_left_as_it_came() -> None:
    body = variant(provider="OpenRouter")
    got = canonical_response(body, "gpt-4o-mini", "openai")
    assert got is not body and body["model"] == "gpt-4o-mini-2024-07-18"
    assert "provider" not in got


def test_a_failed_generation_still_raises() -> None:
    body = variant(choices=[{"index": 0, "finish_reason": "error",
                             "message": {"role": "assistant", "content": ""}}])
    with pytest.raises(ProviderError) as caught:
        canonical_response(body, "gpt-4o-mini", "openai")
    assert caught.value.kind == "server"


OPENAI_USAGE = OPENAI_ANSWER["usage"]
USAGES: dict[str, dict[str, Any]] = {
    "openai's own": OPENAI_USAGE,
    "no completion details": {**OPENAI_USAGE, "completion_tokens_details": ...},
    "empty completion details": {**OPENAI_USAGE, "completion_tokens_details": {}},
    "null completion details": {**OPENAI_USAGE, "completion_tokens_details": None},
    "no cached tokens": {**OPENAI_USAGE, "prompt_tokens_details": {"audio_tokens": 0}},
    "no total": {**OPENAI_USAGE, "total_tokens": ...},
    "xai reasoning apart": {**OPENAI_USAGE, "total_tokens": 35,
                            "completion_tokens_details": {"reasoning_tokens": 6}},
    "deepseek cache hits": {"prompt_tokens": 19, "completion_tokens": 10,
                            "total_tokens": 29, "prompt_cache_hit_tokens": 7},
    "a count as text": {**OPENAI_USAGE, "prompt_tokens": "19"},
}


@pytest.mark.parametrize("name", USAGES)
def test_usage_is_what_the_general_path_makes_of_it(name: str) -> None:
    """OpenAI's own usage object is kept as it came; any other is rebuilt; the
    numbers a client and the accounting see are the same either way."""
    raw = {k: v for k, v in copy.deepcopy(USAGES[name]).items() if v is not ...}
    expected = canonical_usage(MappingProxyType(copy.deepcopy(raw)))  # never kept
    assert canonical_usage(raw) == expected

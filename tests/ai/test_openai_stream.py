"""Chat Completions streams (OpenAI, Azure, Mistral, DeepSeek, Groq) decoded into
canonical chunks, in every split: text, tool calls, usage and finish reason."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from ai_kit import assemble, fixture_bytes, run_stream, same_in_every_split

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers import translator
from campusgate.ai.providers.base import Deployment, StreamDecoder
from campusgate.ai.types import usage

DEPLOYMENT = Deployment("openai", "gpt-4o-mini", "https://api.openai.com/v1", "sk-test")


def decoder(kind: str = "openai") -> Callable[[], StreamDecoder]:
    return lambda: translator(kind).chat_stream(DEPLOYMENT)


def sse(*events: object) -> bytes:
    return b"".join(b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode())
                    + b"\n\n" for e in events)


def test_text_with_cached_tokens_and_a_length_stop() -> None:
    got = same_in_every_split(decoder(), fixture_bytes("openai", "stream_text.sse"))
    assert got.text == "Héllo, world 🌍"
    assert got.finish_reason == "length"
    expected = usage(2006, 5, 1920, reasoning=0)
    expected["prompt_tokens_details"]["audio_tokens"] = 0
    expected["completion_tokens_details"].update(
        audio_tokens=0, accepted_prediction_tokens=0, rejected_prediction_tokens=0)
    assert got.usage == expected


def test_chunks_carry_one_id_the_deployment_model_and_usage_last() -> None:
    chunks = run_stream(decoder()(), [fixture_bytes("openai", "stream_text.sse")])
    assert {c["id"] for c in chunks} == {"chatcmpl-123"}
    assert {c["model"] for c in chunks} == {"gpt-4o-mini"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 2006


def test_parallel_tool_calls() -> None:
    got = same_in_every_split(decoder(), fixture_bytes("openai", "stream_tool_calls.sse"))
    assert got.tool_calls == [
        {"id": "call_weather1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"id": "call_time2", "name": "get_time", "arguments": '{"tz": "CET"}'}]
    assert got.finish_reason == "tool_calls"
    assert got.usage == usage(82, 41, 0, reasoning=0)
    assert got.text == ""


def test_azure_filter_chunks_are_dropped_and_content_filter_kept() -> None:
    got = same_in_every_split(decoder("azure"), fixture_bytes("openai", "stream_azure.sse"))
    assert got.text == "Once upon"
    assert got.finish_reason == "content_filter"
    assert got.usage is not None and got.usage["total_tokens"] == 28


def test_mistral_whole_calls_at_index_0_and_usage_on_the_last_chunk() -> None:
    got = same_in_every_split(decoder("mistral"), fixture_bytes("openai", "stream_mistral.sse"))
    assert got.text == "Let me check."
    assert got.tool_calls == [
        {"id": "D681PevKs", "name": "retrieve_payment_status",
         "arguments": '{"transaction_id": "T1001"}'},
        {"id": "Kq2fX9bLm", "name": "retrieve_payment_date",
         "arguments": '{"transaction_id": "T1001"}'}]
    assert got.finish_reason == "tool_calls"
    assert got.usage == usage(150, 50, 0)


def test_deepseek_reasoning_and_cache_hits() -> None:
    data = fixture_bytes("openai", "stream_deepseek.sse")
    got = same_in_every_split(decoder("openai-compatible"), data)
    assert got.text == "Hi!" and got.finish_reason == "stop"
    assert got.usage == usage(13, 9, 0, reasoning=5)
    chunks = run_stream(decoder("openai-compatible")(), [data])
    assert "".join(c["choices"][0]["delta"].get("reasoning_content", "")
                   for c in chunks if c["choices"]) == "The user greets."
    hit = data.replace(b'"prompt_cache_hit_tokens":0', b'"prompt_cache_hit_tokens":8')
    hit = hit.replace(b'"prompt_tokens_details":{"cached_tokens":0},', b"")
    assert same_in_every_split(decoder("openai-compatible"), hit).usage == usage(
        13, 9, 8, reasoning=5)


def test_groq_usage_under_x_groq() -> None:
    got = same_in_every_split(decoder("openai-compatible"),
                              fixture_bytes("openai", "stream_groq.sse"))
    assert got.text == "Fast." and got.usage == usage(40, 2, 0)


def test_a_cut_stream_raises_after_what_it_had_and_keeps_the_usage() -> None:
    data = fixture_bytes("openai", "stream_text.sse")
    cut = data[:data.index(b"data: [DONE]")]
    dec = decoder()()
    chunks = dec.feed(cut)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks
                   if c["choices"]) == "Héllo, world 🌍"
    with pytest.raises(ProviderError) as caught:
        dec.finish()
    assert caught.value.kind == "bad_response" and "cut" in caught.value.message
    assert dec.usage is not None and dec.usage["prompt_tokens"] == 2006


def test_an_error_inside_the_stream_raises_its_kind() -> None:
    first = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": "a"},
                          "finish_reason": None}]}
    error = {"error": {"message": "Rate limit reached", "type": "rate_limit_error",
                       "code": "rate_limit_exceeded"}}
    dec = decoder()()
    assert len(dec.feed(sse(first))) == 1
    with pytest.raises(ProviderError) as caught:
        dec.feed(sse(error))
    assert caught.value.kind == "rate_limited" and caught.value.message == "Rate limit reached"


@pytest.mark.parametrize(("reason", "kind"), [("error", "server"), ("abort", "server"),
                                              ("insufficient_system_resource", "overloaded")])
def test_a_failed_generation_is_an_error(reason: str, kind: str) -> None:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "par"}, "finish_reason": reason}],
             "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
    dec = decoder("mistral")()
    with pytest.raises(ProviderError) as caught:
        dec.feed(sse(chunk, b"[DONE]"))
    assert caught.value.kind == kind
    assert dec.usage == usage(3, 1)


def test_repeated_ids_and_names_a_missing_id_and_stop_with_calls() -> None:
    base = {"id": "x1", "object": "chat.completion.chunk", "created": 5, "model": "m"}
    pieces = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "function": {"name": "f", "arguments": "{\"a\""}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "function": {"name": "f", "arguments": ": 1}"}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    got = assemble(run_stream(decoder("openai-compatible")(), [sse(*pieces, b"[DONE]")]))
    assert got.tool_calls == [{"id": "call_x1_0", "name": "f", "arguments": '{"a": 1}'}]
    assert got.finish_reason == "tool_calls" and got.usage is None


def test_done_without_a_finish_reason_still_ends_the_choice() -> None:
    chunk = {"id": "x2", "object": "chat.completion.chunk", "created": 5, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "ok"}}]}
    got = assemble(run_stream(decoder()(), [sse(chunk, b"[DONE]")]))
    assert (got.text, got.finish_reason, got.role) == ("ok", "stop", "assistant")


def test_bytes_after_done_are_ignored() -> None:
    data = fixture_bytes("openai", "stream_groq.sse") + b"data: {not json}\n\n"
    assert same_in_every_split(decoder(), data).text == "Fast."

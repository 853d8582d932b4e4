"""Anthropic's event streams (ai/providers/anthropic_stream.py) decoded in every split:
text, tool calls, usage and stop reasons as a client of the canonical form sees them."""

from __future__ import annotations

import json

import pytest
from ai_kit import fixture_bytes, run_stream, same_in_every_split, splits
from test_anthropic_provider import DEPLOYMENT

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.anthropic import ANTHROPIC
from campusgate.ai.providers.anthropic_stream import AnthropicStreamDecoder


def decoder() -> AnthropicStreamDecoder:
    return ANTHROPIC.chat_stream(DEPLOYMENT)


def test_tool_calls_thinking_and_cached_usage() -> None:
    got = same_in_every_split(decoder, fixture_bytes("anthropic", "stream_tool_use.sse"))
    assert got.text == "Okay, let's check the weather — ☀️ or ❄️?"
    assert got.tool_calls == [
        {"id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather",
         "arguments": '{"location": "San Francisco, CA"}'},
        {"id": "toolu_01Xyz", "name": "get_time", "arguments": '{"tz": "PST"}'}]
    assert got.finish_reason == "tool_calls"
    assert got.usage == {"prompt_tokens": 1496, "completion_tokens": 89,
                         "total_tokens": 1585, "prompt_tokens_details": {"cached_tokens": 1024}}


def test_output_tokens_are_cumulative_and_the_stop_sequence_is_named() -> None:
    data = fixture_bytes("anthropic", "stream_stop_sequence.sse")
    got = same_in_every_split(decoder, data)
    assert got.text == "Hello!\r\nHow are you"
    assert got.finish_reason == "stop"
    assert got.usage == {"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40,
                         "prompt_tokens_details": {"cached_tokens": 0}}
    chunks = run_stream(decoder(), [data])
    assert chunks[0]["id"] == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"
    assert chunks[0]["model"] == "claude-sonnet-4-5"
    assert chunks[-2]["choices"][0]["stop_reason"] == "?"


@pytest.mark.parametrize(("stop", "finish"), [
    ("end_turn", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("pause_turn", "stop"), ("refusal", "content_filter"),
    ("model_context_window_exceeded", "length"), (None, "stop")])
def test_stop_reasons_in_a_stream(stop: str | None, finish: str) -> None:
    events = [{"type": "message_start", "message": {"id": "msg_x", "usage": {
        "input_tokens": 4, "output_tokens": 1}}},
              {"type": "message_delta", "delta": {"stop_reason": stop},
               "usage": {"output_tokens": 2}},
              {"type": "message_stop"}]
    data = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    assert same_in_every_split(decoder, data.encode()).finish_reason == finish


def test_an_error_event_raises_its_kind() -> None:
    data = fixture_bytes("anthropic", "stream_overloaded.sse")
    for pieces in splits(data):
        with pytest.raises(ProviderError) as caught:
            run_stream(decoder(), pieces)
        assert (caught.value.kind, caught.value.status) == ("overloaded", 529)
        assert caught.value.message == "Overloaded"


def test_a_cut_stream_raises_after_its_chunks_and_keeps_the_usage() -> None:
    data = fixture_bytes("anthropic", "stream_tool_use.sse")
    cut = data[:data.index(b"event: message_stop")]
    for pieces in splits(cut, seeds=4):
        stream = decoder()
        chunks = [chunk for piece in pieces for chunk in stream.feed(piece)]
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        with pytest.raises(ProviderError) as caught:
            stream.finish()
        assert caught.value.kind == "bad_response"
        assert "cut" in caught.value.message
        assert stream.usage is not None and stream.usage["completion_tokens"] == 89


def test_a_stream_that_is_not_json_is_a_bad_response() -> None:
    with pytest.raises(ProviderError) as caught:
        decoder().feed(b"event: message_start\ndata: {oops\n\n")
    assert caught.value.kind == "bad_response"

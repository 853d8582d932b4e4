"""The client-facing Messages API (ai/api/anthropic_messages*.py): requests and
answers round-trip through the canonical form and the Anthropic provider, and
streams survive encoder -> provider decoder in every split, both ways."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from ai_kit import assemble, fixture, fixture_bytes, run_stream, same_in_every_split
from test_anthropic_provider import DEPLOYMENT

from campusgate.ai.api.anthropic_messages import from_chat, to_chat
from campusgate.ai.api.anthropic_messages_stream import MessagesStreamEncoder
from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.anthropic import ANTHROPIC
from campusgate.ai.providers.anthropic_stream import AnthropicStreamDecoder
from campusgate.ai.sse import SseParser


def decoder() -> AnthropicStreamDecoder:
    return ANTHROPIC.chat_stream(DEPLOYMENT)


def test_a_messages_request_survives_the_canonical_form() -> None:
    original = fixture("anthropic", "messages_request.json")
    original.pop("about")
    chat = to_chat(original)
    assert chat["max_completion_tokens"] == 1024 and chat["user"] == "student-7"
    assert chat["tool_choice"] == "required" and chat["parallel_tool_calls"] is False
    assert chat["stream_options"] == {"include_usage": True}
    assert [m["role"] for m in chat["messages"]] == ["system", "user", "assistant", "tool",
                                                    "tool", "user"]
    assert json.loads(ANTHROPIC.chat_request(chat, DEPLOYMENT).body) == original


def test_string_system_and_content_become_blocks_on_the_way_back() -> None:
    chat = to_chat({"model": "m", "max_tokens": 5, "system": "Be kind.",
                    "messages": [{"role": "user", "content": "hi"},
                                 {"role": "assistant", "content": "Hel"}],
                    "tool_choice": {"type": "tool", "name": "f"},
                    "tools": [{"name": "f", "input_schema": {"type": "object"}}]})
    assert chat["messages"] == [{"role": "system", "content": "Be kind."},
                                {"role": "user", "content": "hi"},
                                {"role": "assistant", "content": "Hel"}]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    body = json.loads(ANTHROPIC.chat_request(chat, DEPLOYMENT).body)
    assert body["system"] == [{"type": "text", "text": "Be kind."}]
    assert body["messages"][1] == {"role": "assistant",
                                   "content": [{"type": "text", "text": "Hel"}]}


def test_images_in_a_tool_result_follow_it_in_a_user_message() -> None:
    chat = to_chat({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "is_error": True, "content": [
            {"type": "text", "text": "screenshot:"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "iVBO"}}]}]}]})
    assert chat["messages"] == [
        {"role": "tool", "tool_call_id": "t1", "content": "screenshot:"},
        {"role": "user", "content": [{"type": "image_url",
                                      "image_url": {"url": "data:image/png;base64,iVBO"}}]}]


@pytest.mark.parametrize("body", [
    {"model": "m"},
    {"model": "m", "messages": [{"role": "system", "content": "x"}]},
    {"model": "m", "messages": [], "tools": [{"type": "web_search_20250305",
                                              "name": "web_search"}]},
    {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "file", "file_id": "file_1"}}]}]},
])
def test_what_the_canonical_form_cannot_carry_is_a_bad_request(body: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as caught:
        to_chat(body)
    assert caught.value.kind == "bad_request" and caught.value.status == 400


def test_an_answer_survives_the_canonical_form() -> None:
    case = fixture("anthropic", "response_tool_use.json")
    original = case["anthropic"]
    chat = ANTHROPIC.chat_response(200, {}, json.dumps(original).encode(), DEPLOYMENT)
    back = from_chat(chat, {"model": "claude-alias"})
    expected = copy.deepcopy(original)
    expected["content"] = expected["content"][1:]  # the thinking block is dropped
    expected["model"] = "claude-sonnet-4-5"
    expected["usage"] = {"input_tokens": 12, "cache_creation_input_tokens": 100,
                         "cache_read_input_tokens": 2000, "output_tokens": 85,
                         "output_tokens_details": {"thinking_tokens": 20}}
    assert back == expected


@pytest.mark.parametrize(("finish", "named", "asked", "stop", "sequence"), [
    ("stop", None, [], "end_turn", None),
    ("stop", "END", ["END"], "stop_sequence", "END"),
    ("stop", "END", [], "end_turn", None),
    ("length", None, [], "max_tokens", None),
    ("tool_calls", None, [], "tool_use", None),
    ("content_filter", None, [], "refusal", None),
])
def test_finish_reasons_become_stop_reasons(finish: str, named: str | None,
                                            asked: list[str], stop: str,
                                            sequence: str | None) -> None:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": "x"},
                              "finish_reason": finish}
    if named is not None:
        choice["stop_reason"] = named
    back = from_chat({"id": "c", "model": "m", "choices": [choice]},
                     {"stop_sequences": asked})
    assert (back["stop_reason"], back["stop_sequence"]) == (stop, sequence)
    assert back["usage"] == {"input_tokens": 0, "cache_creation_input_tokens": 0,
                             "cache_read_input_tokens": 0, "output_tokens": 0}


def encode(chunks: list[dict[str, Any]], request: dict[str, Any]) -> bytes:
    encoder = MessagesStreamEncoder(request)
    return b"".join(encoder.encode(chunk) for chunk in chunks) + encoder.finish()


def events_of(data: bytes) -> list[dict[str, Any]]:
    events = SseParser().feed(data)
    assert all(json.loads(e.data)["type"] == e.event for e in events)
    return [json.loads(e.data) for e in events]


def test_the_encoded_events_are_shaped_as_anthropic_sends_them() -> None:
    chunks = fixture("anthropic", "canonical_stream.json")["chunks"]
    events = events_of(encode(chunks, {"model": "claude-alias"}))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert events[0]["message"]["content"] == [] and events[0]["message"]["model"] == "gpt-4o"
    starts = [e for e in events if e["type"] == "content_block_start"]
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert [s["index"] for s in starts] == stops == [0, 1, 2]
    assert [s["content_block"]["type"] for s in starts] == ["text", "tool_use", "tool_use"]
    assert events[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2]["usage"] == {"input_tokens": 176, "cache_creation_input_tokens": 0,
                                   "cache_read_input_tokens": 1024, "output_tokens": 40}


def test_a_canonical_stream_comes_back_alike_in_every_split() -> None:
    chunks = fixture("anthropic", "canonical_stream.json")["chunks"]
    original = assemble(chunks)
    got = same_in_every_split(decoder, encode(chunks, {"model": "claude-alias"}))
    original.ids = set()
    assert got == original


@pytest.mark.parametrize("name", ["stream_tool_use.sse", "stream_stop_sequence.sse"])
def test_an_anthropic_stream_comes_back_alike_in_every_split(name: str) -> None:
    chunks = run_stream(decoder(), [fixture_bytes("anthropic", name)])
    again = encode(chunks, {"model": "claude-alias", "stop_sequences": ["?"]})
    got = same_in_every_split(decoder, again)
    original = assemble(chunks)
    original.ids = set()
    assert got == original
    stop = next(e for e in events_of(again) if e["type"] == "message_delta")["delta"]
    if name == "stream_stop_sequence.sse":
        assert stop == {"stop_reason": "stop_sequence", "stop_sequence": "?"}


def test_an_empty_stream_still_opens_and_closes_the_message() -> None:
    encoder = MessagesStreamEncoder({"model": "claude-alias"})
    kinds = [e["type"] for e in events_of(encoder.finish())]
    assert kinds == ["message_start", "message_delta", "message_stop"]
    assert encoder.finish() == b""


def test_an_upstream_failure_becomes_an_error_event() -> None:
    error = ProviderError("rate_limited", "slow down", status=429, provider="openai")
    (event,) = events_of(MessagesStreamEncoder({}).error(error))
    assert event == {"type": "error", "error": {"type": "rate_limit_error",
                                                "message": str(error)}}

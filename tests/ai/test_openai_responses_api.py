"""The Responses API over the canonical form: requests and answers against golden
fixtures, and streams encoded as Responses events that a client (rebuilding the
response the way the openai SDK's ``ResponseStreamState`` does) reads back whole."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from ai_kit import assemble, fixture, fixture_bytes, run_stream

from campusgate.ai.api.responses import ResponsesStreamEncoder, from_chat, to_chat
from campusgate.ai.errors import ProviderError
from campusgate.ai.providers import translator
from campusgate.ai.providers.base import Deployment
from campusgate.ai.sse import SseParser


def test_to_chat() -> None:
    case = fixture("openai", "responses_request.json")
    assert to_chat(case["request"]) == case["chat"]


def test_string_input_json_object_and_allowed_tools() -> None:
    tools = [{"type": "function", "name": n, "parameters": {"type": "object"}}
             for n in ("a", "b")]
    chat = to_chat({"model": "m", "input": "hi", "text": {"format": {"type": "json_object"}},
                    "tools": tools, "tool_choice": {"type": "allowed_tools", "mode": "required",
                                                    "tools": [{"type": "function", "name": "b"}]}})
    assert chat["messages"] == [{"role": "user", "content": "hi"}]
    assert chat["response_format"] == {"type": "json_object"}
    assert [t["function"]["name"] for t in chat["tools"]] == ["b"]
    assert chat["tool_choice"] == "required" and "stream" not in chat


@pytest.mark.parametrize(("request_", "named"), [
    ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"tools": [{"type": "web_search"}]}, "web_search"),
    ({"tool_choice": {"type": "file_search"}}, "file_search"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "item_reference"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input_image"),
    ({"input": [{"type": "function_call_output", "call_id": "c",
                 "output": [{"type": "input_image", "image_url": "https://x/y.png"}]}]},
     "function_call_output"),
    ({"text": {"format": {"type": "grammar"}}}, "grammar")])
def test_what_needs_openai_itself_is_refused_by_name(request_: dict[str, Any],
                                                     named: str) -> None:
    with pytest.raises(ProviderError) as caught:
        to_chat({"model": "m", "input": "x", **request_})
    assert caught.value.kind == "bad_request" and named in caught.value.message


def test_from_chat() -> None:
    case = fixture("openai", "responses_from_chat.json")
    assert from_chat(case["chat"], case["request"], response_id="resp_abc") == case["response"]


@pytest.mark.parametrize(("finish", "status", "reason"), [
    ("stop", "completed", None), ("tool_calls", "completed", None),
    ("length", "incomplete", "max_output_tokens"),
    ("content_filter", "incomplete", "content_filter")])
def test_status(finish: str, status: str, reason: str | None) -> None:
    chat = {"id": "c", "created": 1, "model": "m", "choices": [{
        "index": 0, "finish_reason": finish,
        "message": {"role": "assistant", "content": "x", "refusal": None}}]}
    got = from_chat(chat, {"model": "m"})
    assert got["status"] == status and got["usage"] is None
    assert got["incomplete_details"] == (reason and {"reason": reason})
    assert got["id"].startswith("resp_")


# -- streams ---------------------------------------------------------------------


def events_of(data: bytes) -> list[dict[str, Any]]:
    parser = SseParser()
    events = []
    for event in parser.feed(data):
        body = json.loads(event.data)
        assert event.event == body["type"]
        events.append(body)
    assert not parser.pending
    return events


def rebuild(events: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The snapshot and the final response, as the openai SDK accumulates them."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created"
    snapshot = copy.deepcopy(events[0]["response"])
    final: dict[str, Any] = {}
    for event in events[1:]:
        kind = event["type"]
        output = snapshot["output"]
        if kind == "response.output_item.added":
            assert event["output_index"] == len(output)
            output.append(copy.deepcopy(event["item"]))
        elif kind == "response.content_part.added":
            assert event["content_index"] == len(output[event["output_index"]]["content"])
            output[event["output_index"]]["content"].append(copy.deepcopy(event["part"]))
        elif kind == "response.output_text.delta":
            output[event["output_index"]]["content"][event["content_index"]]["text"] += \
                event["delta"]
        elif kind == "response.function_call_arguments.delta":
            output[event["output_index"]]["arguments"] += event["delta"]
        elif kind == "response.output_text.done":
            part = output[event["output_index"]]["content"][event["content_index"]]
            assert part["text"] == event["text"]
        elif kind == "response.function_call_arguments.done":
            assert output[event["output_index"]]["arguments"] == event["arguments"]
        elif kind in ("response.completed", "response.incomplete"):
            assert event is events[-1]
            final = event["response"]
    return snapshot, final


def chat_of(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``chat.completion`` a client makes of canonical chunks."""
    got = assemble(chunks)
    calls = [{"id": c["id"], "type": "function",
              "function": {"name": c["name"], "arguments": c["arguments"]}}
             for c in got.tool_calls]
    message: dict[str, Any] = {"role": "assistant", "content": got.text or None}
    if calls:
        message["tool_calls"] = calls
    return {"id": chunks[0]["id"], "object": "chat.completion", "created": chunks[0]["created"],
            "model": "gpt-fast", "choices": [{"index": 0, "message": message,
                                              "finish_reason": got.finish_reason}],
            "usage": got.usage}


@pytest.mark.parametrize(("provider", "name", "status", "kinds"), [
    ("mistral", "stream_mistral.sse", "completed",
     ["message", "function_call", "function_call"]),
    ("openai", "stream_text.sse", "incomplete", ["message"]),
    ("openai", "stream_tool_calls.sse", "completed", ["function_call", "function_call"])])
def test_a_stream_reads_back_as_the_answer(provider: str, name: str, status: str,
                                           kinds: list[str]) -> None:
    deployment = Deployment(provider, "gpt-fast", "https://example.test/v1", "k")
    chunks = run_stream(translator(provider).chat_stream(deployment),
                        [fixture_bytes("openai", name)])
    request = {"model": "gpt-fast", "input": "hi", "stream": True}
    encoder = ResponsesStreamEncoder(request, response_id="resp_s1",
                                     created=chunks[0]["created"])
    data = b"".join(encoder.feed(chunk) for chunk in chunks) + encoder.finish()
    events = events_of(data)
    snapshot, final = rebuild(events)
    assert final == from_chat(chat_of(chunks), request, response_id="resp_s1")
    assert final["status"] == status and [i["type"] for i in final["output"]] == kinds
    assert [i.get("arguments") for i in snapshot["output"]] == [
        i.get("arguments") for i in final["output"]]
    assert [[p["text"] for p in i.get("content", [])] for i in snapshot["output"]] == [
        [p["text"] for p in i.get("content", [])] for i in final["output"]]
    assert final["usage"]["input_tokens"] == chunks[-1]["usage"]["prompt_tokens"]
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done == final["output"]


def test_refusal_parts_and_a_failure() -> None:
    encoder = ResponsesStreamEncoder({"model": "m"}, response_id="resp_r", created=1)
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    data = encoder.feed({**base, "choices": [{"index": 0, "delta": {
        "role": "assistant", "refusal": "I can't"}, "finish_reason": None}]})
    data += encoder.feed({**base, "choices": [{"index": 0, "delta": {"refusal": " help."},
                                              "finish_reason": None}]})
    data += encoder.fail(ProviderError("rate_limited", "slow down"))
    events = events_of(data)
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert "".join(e["delta"] for e in events if e["type"] == "response.refusal.delta") \
        == "I can't help."
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "rate_limit_exceeded", "message": "slow down"}


def test_a_tool_call_resumed_after_the_next_one_began_is_refused() -> None:
    encoder = ResponsesStreamEncoder({"model": "m"})
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def call(index: int, **fields: Any) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "finish_reason": None, "delta": {
            "tool_calls": [{"index": index, **fields}]}}]}

    encoder.feed(call(0, id="a", function={"name": "f", "arguments": "{"}))
    encoder.feed(call(1, id="b", function={"name": "g", "arguments": "{}"}))
    with pytest.raises(ProviderError):
        encoder.feed(call(0, function={"arguments": "}"}))

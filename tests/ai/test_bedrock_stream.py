"""Bedrock ConverseStream (ai/providers/bedrock_stream.py): event-stream bodies built
with the frame encoder from the API reference's events, decoded in every split."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ai_kit import fixture, run_stream, same_in_every_split

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.base import Deployment, StreamDecoder
from campusgate.ai.providers.bedrock import BEDROCK
from campusgate.ai.providers.eventstream import encode_message

DEPLOYMENT = Deployment("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", "",
                        api_key="k")


def event(kind: str, payload: dict[str, Any]) -> bytes:
    return encode_message({":event-type": kind, ":content-type": "application/json",
                           ":message-type": "event"}, json.dumps(payload).encode())


def exception(kind: str, message: str) -> bytes:
    return encode_message({":exception-type": kind, ":content-type": "application/json",
                           ":message-type": "exception"},
                          json.dumps({"message": message}).encode())


def body(name: str) -> tuple[bytes, dict[str, Any]]:
    case = fixture("bedrock", name)
    return b"".join(event(kind, payload) for kind, payload in case["events"]), case


def decoder() -> StreamDecoder:
    return BEDROCK.chat_stream(DEPLOYMENT)


@pytest.mark.parametrize("name", ["stream_text.json", "stream_tool_use.json"])
def test_streams_decode_alike_in_every_split(name: str) -> None:
    data, case = body(name)
    got = same_in_every_split(decoder, data)
    assert got.text == case["text"]
    assert got.tool_calls == case["tool_calls"]
    assert got.finish_reason == case["finish_reason"]
    assert got.usage == case["usage"]


def test_the_finish_reason_comes_at_message_stop_before_the_usage() -> None:
    data, _ = body("stream_text.json")
    chunks = run_stream(decoder(), [data])
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 17


def test_a_stream_cut_before_message_stop_is_an_error_and_keeps_no_usage() -> None:
    data, _ = body("stream_text.json")
    stream = decoder()
    cut = data[:len(data) // 2]
    stream.feed(cut)
    with pytest.raises(ProviderError, match="cut") as caught:
        stream.finish()
    assert caught.value.kind == "bad_response"
    assert stream.usage is None


def test_a_stream_cut_after_message_stop_ends_without_usage() -> None:
    events = fixture("bedrock", "stream_text.json")["events"][:-1]
    stream = decoder()
    chunks = run_stream(stream, [b"".join(event(k, p) for k, p in events)])
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert stream.usage is None


@pytest.mark.parametrize(("name", "kind"), [
    ("throttlingException", "rate_limited"), ("modelStreamErrorException", "server"),
    ("validationException", "bad_request"), ("internalServerException", "server"),
    ("serviceUnavailableException", "overloaded"), ("modelTimeoutException", "timeout"),
])
def test_exceptions_inside_the_stream(name: str, kind: str) -> None:
    stream = decoder()
    stream.feed(event("messageStart", {"role": "assistant"}))
    with pytest.raises(ProviderError) as caught:
        stream.feed(exception(name, "Too many tokens, please wait"))
    assert (caught.value.kind, caught.value.message) == (kind, "Too many tokens, please wait")
    assert caught.value.code == name


def test_an_error_message_and_a_corrupt_frame_raise() -> None:
    with pytest.raises(ProviderError, match="boom"):
        decoder().feed(encode_message({":message-type": "error",
                                       ":error-code": "InternalFailure",
                                       ":error-message": "boom"}))
    frame = bytearray(event("messageStart", {"role": "assistant"}))
    frame[-6] ^= 1
    with pytest.raises(ProviderError, match="checksum") as caught:
        decoder().feed(bytes(frame))
    assert caught.value.kind == "bad_response"


def test_malformed_tool_use_raises_at_message_stop() -> None:
    stream = decoder()
    stream.feed(event("messageStart", {"role": "assistant"}))
    with pytest.raises(ProviderError) as caught:
        stream.feed(event("messageStop", {"stopReason": "malformed_tool_use"}))
    assert caught.value.kind == "bad_response"

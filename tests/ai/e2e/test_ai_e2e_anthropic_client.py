"""The official ``anthropic`` SDK against ``/v1/messages`` of a real ``campusgate
serve``: Anthropic's own provider behind it, and an OpenAI provider translated."""

from __future__ import annotations

import json

import anthropic
import pytest
from ai_harness import ALICE_KEY, AiGateway
from anthropic.types import MessageParam, ToolParam
from fake_reply import Reply, ToolCall

USER: list[MessageParam] = [{"role": "user", "content": "What is the weather in Oslo?"}]
WEATHER = ToolCall("call_w1", "get_weather", '{"city": "Oslo"}')
TOOLS: list[ToolParam] = [{"name": "get_weather", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}}}]


@pytest.mark.parametrize("model, path", [("claude", "/v1/messages"),
                                         ("gpt-fast", "/v1/chat/completions")])
def test_messages_plain(gateway: AiGateway, model: str, path: str) -> None:
    gateway.main.push(Reply(text="Rain.", prompt_tokens=20, cached_tokens=8,
                            completion_tokens=4))
    message = gateway.anthropic().messages.create(model=model, max_tokens=100,
                                                  messages=USER)
    assert message.model == model
    assert message.content[0].type == "text" and message.content[0].text == "Rain."
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens,
            message.usage.output_tokens) == (12, 8, 4)
    assert gateway.main.seen[-1].path == path
    assert ALICE_KEY not in json.dumps(gateway.main.seen[-1].headers)


@pytest.mark.parametrize("model", ["claude", "gpt-fast"])
def test_messages_streamed_with_a_tool_call(gateway: AiGateway, model: str) -> None:
    gateway.main.push(Reply(text="Let me check.", tool_calls=(WEATHER,),
                            finish_reason="tool_calls", completion_tokens=11))
    with gateway.anthropic().messages.stream(
            model=model, max_tokens=100, messages=USER,
            tools=TOOLS) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "text" and final.content[0].text == "Let me check."
    tool = final.content[1]
    assert tool.type == "tool_use" and tool.name == "get_weather"
    assert tool.input == {"city": "Oslo"}
    assert final.usage.output_tokens == 11


def test_errors_come_in_anthropics_shape(gateway: AiGateway) -> None:
    with pytest.raises(anthropic.NotFoundError) as unknown:
        gateway.anthropic().messages.create(model="no-such-model", max_tokens=10,
                                            messages=USER)
    body = unknown.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"


def test_falls_back_for_anthropic_clients_too(gateway: AiGateway) -> None:
    message = gateway.anthropic().messages.create(model="flaky", max_tokens=10,
                                                  messages=USER)
    assert message.content[0].type == "text"
    assert message.content[0].text == "From the backup."


def test_an_upstream_refusal_keeps_its_reason(gateway: AiGateway) -> None:
    gateway.main.push(Reply(status=400, error_message="prompt is too long: 210000 tokens"))
    with pytest.raises(anthropic.BadRequestError) as refused:
        gateway.anthropic().messages.create(model="gpt-fast", max_tokens=10, messages=USER)
    body = refused.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert "prompt is too long" in body["error"]["message"]


def test_length_from_an_openai_provider_is_max_tokens(gateway: AiGateway) -> None:
    gateway.main.push(Reply(text="Cut", finish_reason="length"))
    message = gateway.anthropic().messages.create(model="gpt-fast", max_tokens=1,
                                                  messages=USER)
    assert message.stop_reason == "max_tokens"


def test_a_provider_stream_cut_midway_ends_with_an_error_event(gateway: AiGateway) -> None:
    """Anthropic's ``error`` event after what was streamed, not a broken connection."""
    gateway.main.push(Reply(text="one two three four five six", cut_after=4))
    text = ""
    with pytest.raises(anthropic.APIStatusError) as cut, gateway.anthropic().messages.stream(
            model="claude", max_tokens=100, messages=USER) as stream:
        for piece in stream.text_stream:
            text += piece
    assert "closed the connection" in str(cut.value)
    assert text == "one "

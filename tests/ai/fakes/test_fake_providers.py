"""The fakes against the official SDKs directly: if the ``openai`` and ``anthropic``
clients read what a fake says, the fake speaks the providers' wire formats, and the
end-to-end tests through campusgate start from a true provider."""

from __future__ import annotations

import json
import socket
import time

import anthropic
import httpx
import openai
import pytest
from fake_provider import FakeProvider, running_fake
from fake_reply import Reply, ToolCall

CALL = ToolCall("call_1", "get_weather", '{"city": "Oslo"}')


def test_openai_chat_as_the_sdk_reads_it() -> None:
    with running_fake(FakeProvider(Reply(text="Hi there", prompt_tokens=20,
                                         cached_tokens=8, completion_tokens=3))) as fake:
        client = openai.OpenAI(base_url=fake.openai_base, api_key="k", max_retries=0)
        answer = client.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Hi there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "gpt-x"
    assert answer.usage is not None and answer.usage.prompt_tokens == 20
    assert answer.usage.prompt_tokens_details is not None
    assert answer.usage.prompt_tokens_details.cached_tokens == 8
    assert fake.seen[0].headers["authorization"] == "Bearer k"


def test_openai_stream_with_usage_and_tool_calls() -> None:
    reply = Reply(text="Let me look.", tool_calls=(CALL,), finish_reason="tool_calls")
    with running_fake(FakeProvider(reply)) as fake:
        client = openai.OpenAI(base_url=fake.openai_base, api_key="k", max_retries=0)
        chunks = list(client.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    args = "".join(t.function.arguments or "" for c in chunks if c.choices
                   for t in c.choices[0].delta.tool_calls or [] if t.function)
    assert text == "Let me look."
    assert json.loads(args) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7


def test_openai_embeddings_floats_and_base64() -> None:
    with running_fake() as fake:
        client = openai.OpenAI(base_url=fake.openai_base, api_key="k", max_retries=0)
        default = client.embeddings.create(model="emb", input=["a", "b"])
        floats = client.embeddings.create(model="emb", input="a",
                                          encoding_format="float")
    assert len(default.data) == 2 and len(default.data[0].embedding) == 8
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding)


def test_openai_errors_keep_status_body_and_retry_after() -> None:
    fake = FakeProvider(by_model={"busy": Reply(status=429, retry_after=7,
                                                 error_message="slow down")},
                        keys={"good"})
    with running_fake(fake) as served:
        client = openai.OpenAI(base_url=served.openai_base, api_key="good",
                               max_retries=0)
        with pytest.raises(openai.RateLimitError) as limited:
            client.chat.completions.create(model="busy", messages=[])
        bad = openai.OpenAI(base_url=served.openai_base, api_key="bad", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as denied:
            bad.chat.completions.create(model="m", messages=[])
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.code == "rate_limit_exceeded"
    assert "slow down" in limited.value.message
    assert denied.value.code == "invalid_api_key"


def test_anthropic_message_and_stream_as_the_sdk_reads_them() -> None:
    reply = Reply(text="Sunny, I think.", tool_calls=(CALL,), finish_reason="tool_calls",
                  prompt_tokens=30, cached_tokens=10, cache_write_tokens=5)
    with running_fake(FakeProvider(reply, keys={"ak"})) as fake:
        client = anthropic.Anthropic(base_url=fake.url, api_key="ak", max_retries=0)
        message = client.messages.create(model="claude-x", max_tokens=100,
                                         messages=[{"role": "user", "content": "hi"}])
        with client.messages.stream(model="claude-x", max_tokens=100, messages=[
                {"role": "user", "content": "hi"}]) as stream:
            final = stream.get_final_message()
    for got in (message, final):
        assert got.stop_reason == "tool_use"
        assert got.content[0].type == "text" and got.content[0].text == "Sunny, I think."
        assert got.content[1].type == "tool_use" and got.content[1].input == {"city": "Oslo"}
        assert got.usage.input_tokens == 15 and got.usage.cache_read_input_tokens == 10
        assert got.usage.output_tokens == 7
    assert fake.seen[0].headers["anthropic-version"]


def test_anthropic_error_shape() -> None:
    with running_fake(FakeProvider(Reply(status=529, error_message="Overloaded"))) as fake:
        client = anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as failed:
            client.messages.create(model="c", max_tokens=5, messages=[])
    assert failed.value.status_code == 529
    assert failed.value.body == {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}


def test_a_cut_stream_ends_without_its_last_events() -> None:
    with (running_fake(FakeProvider(Reply(cut_after=2))) as fake,
          httpx.stream("POST", f"{fake.openai_base}/chat/completions",
                       json={"model": "m", "stream": True}) as answer,
          pytest.raises(httpx.RemoteProtocolError)):
        answer.read()


def test_a_slow_first_byte_and_a_client_that_leaves_mid_stream() -> None:
    reply = Reply(first_byte_delay=0.2, event_delay=0.2, text="one two three four")
    with running_fake(FakeProvider(reply)) as fake:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", fake.port)) as sock:
            body = b'{"model": "m", "stream": true}'
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                         b"content-length: %d\r\n\r\n%s" % (len(body), body))
            first = sock.recv(100)
            waited = time.monotonic() - started
        assert first.startswith(b"HTTP/1.1 200")
        assert waited >= 0.2
        assert fake.wait_aborted(1)
        assert fake.streams_done == 0

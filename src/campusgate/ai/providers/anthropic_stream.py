"""Anthropic's streamed Messages (``"stream": true``) as canonical chunks, sans-IO.

The event flow ("Streaming Messages"): ``message_start`` (the message with empty
content and the input side of ``usage``), per content block a
``content_block_start``, ``content_block_delta``\\ s and a ``content_block_stop``,
one or more ``message_delta`` (``stop_reason``, ``stop_sequence`` and *cumulative*
``usage``: ``output_tokens`` is the total so far, and newer API versions repeat the
input side there with final values -- the latest value of each field wins, as in
the SDK's ``accumulate_event``), then ``message_stop``, the end marker.  ``ping``
is ignored; ``event: error`` raises; event types added later are ignored, as the
versioning policy asks.

Blocks: ``text`` -> ``delta.content``; ``tool_use`` -> ``delta.tool_calls`` with the
index counting tool blocks only (OpenAI's numbering) and ``input_json_delta``
pieces as ``arguments``; ``thinking`` / ``redacted_thinking`` (their
``thinking_delta`` / ``signature_delta``) and server-tool blocks are dropped, as
in the non-streamed answer.

The finish chunk and the usage chunk are sent on ``message_stop`` (usage may still
change until then).  A body that ends before ``message_stop`` makes :meth:`finish`
raise ``bad_response``; :attr:`usage` still says what was counted.
"""

from __future__ import annotations

import json
import time
from typing import Any

from campusgate.ai.errors import ProviderError
from campusgate.ai.json_codec import loads
from campusgate.ai.providers.anthropic_wire import (
    PROVIDER,
    canonical_usage,
    finish_reason,
    stream_error,
)
from campusgate.ai.providers.json_wire import sse_events
from campusgate.ai.sse import SseParser
from campusgate.ai.types import ChatChunk, Json, chat_chunk

__all__ = ["AnthropicStreamDecoder"]

_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
                 "cache_creation_input_tokens", "output_tokens_details")


class AnthropicStreamDecoder:
    """One streamed Messages answer -> ``chat.completion.chunk``\\ s."""

    def __init__(self, model: str, *, created: int | None = None) -> None:
        self._model = model
        self._created = int(time.time()) if created is None else created
        self._parser = SseParser()
        self._id = ""
        self._usage: Json | None = None
        #: Anthropic block index -> tool call index (tool blocks only).
        self._tools: dict[int, int] = {}
        self._text_blocks: set[int] = set()
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None
        self._started = False
        self._done = False

    @property
    def usage(self) -> Json | None:
        return None if self._usage is None else canonical_usage(self._usage)

    def feed(self, data: bytes) -> list[ChatChunk]:
        events = sse_events(self._parser, data, PROVIDER)
        chunks: list[ChatChunk] = []
        for event in events:
            try:
                payload = loads(event.data)
            except ValueError as exc:
                raise ProviderError("bad_response", f"an event that is not JSON: "
                                    f"{event.data[:200]!r}", provider=PROVIDER) from exc
            if not isinstance(payload, dict):
                continue
            chunks += self._event(str(payload.get("type") or event.event), payload)
        return chunks

    def finish(self) -> list[ChatChunk]:
        self._parser.close()
        if not self._done:
            raise ProviderError("bad_response", "the stream was cut before message_stop",
                                provider=PROVIDER)
        return []

    def _chunk(self, delta: Json | None = None, finish: str | None = None,
               usage: Json | None = None) -> ChatChunk:
        return chat_chunk(id=self._id, model=self._model, created=self._created,
                          delta=delta, finish_reason=finish, usage=usage)

    def _delta(self, delta: Json) -> list[ChatChunk]:
        if not self._started:  # a block before message_start: say the role anyway
            self._started = True
            delta = {"role": "assistant", **delta}
        return [self._chunk(delta)]

    def _merge_usage(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            return
        merged = dict(self._usage or {})
        merged.update({k: raw[k] for k in _USAGE_FIELDS if raw.get(k) is not None})
        self._usage = merged

    def _event(self, kind: str, data: Json) -> list[ChatChunk]:
        if self._done or kind == "ping":
            return []
        if kind == "error":
            raise stream_error(data)
        if kind == "message_start":
            message = data.get("message") or {}
            self._id = str(message.get("id") or "")
            self._merge_usage(message.get("usage"))
            if self._started:
                return []
            self._started = True
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(int(data.get("index", 0)),
                                     data.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(int(data.get("index", 0)), data.get("delta") or {})
        if kind == "message_delta":
            delta = data.get("delta") or {}
            if delta.get("stop_reason") is not None:
                self._stop_reason = delta["stop_reason"]
                self._stop_sequence = delta.get("stop_sequence")
            self._merge_usage(data.get("usage"))
            return []
        if kind == "message_stop":
            self._done = True
            return self._last_chunks()
        return []

    def _block_start(self, index: int, block: Json) -> list[ChatChunk]:
        kind = block.get("type")
        if kind == "text":
            self._text_blocks.add(index)
            text = block.get("text") or ""
            return self._delta({"content": text}) if text else []
        if kind != "tool_use":
            return []
        position = self._tools[index] = len(self._tools)
        initial = block.get("input")
        arguments = json.dumps(initial) if initial else ""
        return self._delta({"tool_calls": [{
            "index": position, "id": block.get("id"), "type": "function",
            "function": {"name": block.get("name"), "arguments": arguments}}]})

    def _block_delta(self, index: int, delta: Json) -> list[ChatChunk]:
        kind = delta.get("type")
        if kind == "text_delta" and index in self._text_blocks:
            text = delta.get("text") or ""
            return self._delta({"content": text}) if text else []
        if kind == "input_json_delta" and index in self._tools:
            piece = delta.get("partial_json") or ""
            if not piece:
                return []
            return self._delta({"tool_calls": [{"index": self._tools[index],
                                                "function": {"arguments": piece}}]})
        return []

    def _last_chunks(self) -> list[ChatChunk]:
        chunks = self._delta({})
        choice = chunks[0]["choices"][0]
        choice["finish_reason"] = finish_reason(self._stop_reason)
        if self._stop_reason == "stop_sequence" and self._stop_sequence is not None:
            choice["stop_reason"] = self._stop_sequence
        usage = self.usage
        if usage is not None:
            chunks.append(self._chunk(usage=usage))
        return chunks

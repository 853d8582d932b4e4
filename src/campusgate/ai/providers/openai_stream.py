"""A Chat Completions event stream (OpenAI, Azure, Mistral, the compatible servers)
decoded into canonical chunks, sans-IO.

OpenAI API reference, "Chat Completions" -> "The chat completion chunk object" and
"Streaming": ``data:`` events each holding a ``chat.completion.chunk``, then ``data:
[DONE]``, the end marker (a stream without it was cut).  With
``stream_options.include_usage`` the last chunk before it has ``choices: []`` and the
usage; Mistral and DeepSeek put the usage on the last choice chunk, Groq under
``x_groq.usage``; vLLM's ``continuous_usage_stats`` repeats it on every chunk.  An
error inside the stream comes as ``data: {"error": {...}}`` (or ``event: error``).

Re-emitted canonical: one id and ``created`` for the whole stream, ``model`` the
deployment's; ``role: assistant`` on the first chunk of a choice only (some servers
repeat it); empty keep-alive chunks (Azure's ``prompt_filter_results`` chunk and its
content-filter annotations) dropped; tool calls with an ``index`` each, the ``id``,
``type`` and ``name`` once (some servers repeat them, some send a whole call per chunk
with index 0 for every call: a new id is a new call); the finish reason mapped once
(:func:`~campusgate.ai.providers.openai_family.finish_reason`); the usage, wherever it
came, as one ``choices: []`` chunk at the end, when ``[DONE]`` arrives.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from campusgate.ai.errors import ProviderError
from campusgate.ai.json_codec import loads
from campusgate.ai.providers.json_wire import sse_events
from campusgate.ai.providers.openai_family import (
    arguments_text,
    canonical_usage,
    classify,
    finish_reason,
    text_of,
)
from campusgate.ai.sse import SseEvent, SseParser
from campusgate.ai.types import ChatChunk, Json

__all__ = ["OpenAIStreamDecoder"]


@dataclass
class _Call:
    index: int
    id: str
    id_sent: bool = False
    named: bool = False


@dataclass
class _Choice:
    started: bool = False
    finished: bool = False
    calls: list[_Call] = field(default_factory=list)
    #: The upstream's index of a call -> the call.
    by_upstream: dict[int, _Call] = field(default_factory=dict)


class OpenAIStreamDecoder:
    """One streamed Chat Completions answer (see the module doc)."""

    def __init__(self, model: str, provider: str) -> None:
        self._model = model
        self._provider = provider
        self._parser = SseParser()
        self._id: str | None = None
        self._created: int | None = None
        self._fingerprint: str | None = None
        self._choices: dict[int, _Choice] = {}
        self._usage: Json | None = None
        self._done = False

    @property
    def usage(self) -> Json | None:
        return self._usage

    def feed(self, data: bytes) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        events = sse_events(self._parser, data, self._provider) if not self._done else []
        for event in events:
            if not self._done:
                out += self._event(event)
        return out

    def finish(self) -> list[ChatChunk]:
        self._parser.close()
        if not self._done:
            raise ProviderError("bad_response", "the stream was cut before data: [DONE]",
                                provider=self._provider)
        return []

    def _event(self, event: SseEvent) -> list[ChatChunk]:
        payload = event.data.strip()
        if payload == "[DONE]":
            self._done = True
            return self._end()
        try:
            data = loads(payload)
        except ValueError:
            raise ProviderError("bad_response", f"a stream event is not JSON: {payload[:200]}",
                                provider=self._provider) from None
        if not isinstance(data, dict):
            raise ProviderError("bad_response", "a stream event is not a JSON object",
                                provider=self._provider)
        if data.get("error") or event.event == "error":
            raise classify(0, None, data, self._provider)
        if self._id is None and data.get("id"):
            self._id = str(data["id"])
        if self._created is None and data.get("created"):
            self._created = int(data["created"])
        if data.get("system_fingerprint"):
            self._fingerprint = str(data["system_fingerprint"])
        raw_usage = data.get("usage") or (data.get("x_groq") or {}).get("usage")
        if isinstance(raw_usage, dict):
            self._usage = canonical_usage(raw_usage)
        out = []
        for choice in data.get("choices") or []:
            chunk = self._choice(choice)
            if chunk is not None:
                out.append(chunk)
        return out

    def _choice(self, choice: dict[str, Any]) -> ChatChunk | None:
        index = int(choice.get("index") or 0)
        state = self._choices.setdefault(index, _Choice())
        upstream = choice.get("delta") or {}
        delta: Json = {}
        if not state.started:
            state.started = True
            delta["role"] = "assistant"
        content = text_of(upstream.get("content"))
        if content or (content is not None and "role" in delta):
            delta["content"] = content
        for key, names in (("refusal", ("refusal",)),
                           ("reasoning_content", ("reasoning_content", "reasoning"))):
            value = next((upstream[n] for n in names if upstream.get(n)), None)
            if isinstance(value, str):
                delta[key] = value
        calls = [self._call(state, call) for call in upstream.get("tool_calls") or []]
        if calls:
            delta["tool_calls"] = calls
        finish = None
        if choice.get("finish_reason") is not None and not state.finished:
            state.finished = True
            finish = finish_reason(choice["finish_reason"], bool(state.calls), self._provider)
        if not delta and finish is None:
            return None
        return self._chunk([{"index": index, "delta": delta, "finish_reason": finish,
                             "logprobs": choice.get("logprobs")}])

    def _call(self, state: _Choice, call: dict[str, Any]) -> Json:
        upstream_index = call.get("index")
        call_id = call.get("id")
        slot = state.by_upstream.get(upstream_index) if upstream_index is not None else (
            next((c for c in state.calls if c.id == call_id), None) if call_id
            else (state.calls[-1] if state.calls else None))
        if slot is None or (call_id and slot.id_sent and call_id != slot.id):
            n = len(state.calls)
            slot = _Call(n, call_id or f"call_{self._stream_id()[-12:]}_{n}")
            state.calls.append(slot)
            if upstream_index is not None:
                state.by_upstream[upstream_index] = slot
        out: Json = {"index": slot.index}
        if not slot.id_sent:
            slot.id_sent = True
            out["id"] = slot.id
            out["type"] = "function"
        function = call.get("function") or {}
        piece: Json = {}
        if not slot.named and function.get("name"):
            slot.named = True
            piece["name"] = function["name"]
        piece["arguments"] = arguments_text(function.get("arguments"))
        out["function"] = piece
        return out

    def _end(self) -> list[ChatChunk]:
        out = []
        if not self._choices:
            self._choices[0] = _Choice()
        for index, state in sorted(self._choices.items()):
            if not state.finished:  # [DONE] without a finish reason: the model stopped
                delta: Json = {"role": "assistant", "content": ""} if not state.started else {}
                reason = "tool_calls" if state.calls else "stop"
                out.append(self._chunk([{"index": index, "delta": delta,
                                         "finish_reason": reason, "logprobs": None}]))
        if self._usage is not None:
            chunk = self._chunk([])
            chunk["usage"] = self._usage
            out.append(chunk)
        return out

    def _stream_id(self) -> str:
        if self._id is None:
            self._id = f"chatcmpl-{uuid.uuid4().hex}"
        return self._id

    def _chunk(self, choices: list[Json]) -> ChatChunk:
        if self._created is None:
            self._created = int(time.time())
        chunk: ChatChunk = {"id": self._stream_id(), "object": "chat.completion.chunk",
                            "created": self._created, "model": self._model,
                            "choices": choices}
        if self._fingerprint:
            chunk["system_fingerprint"] = self._fingerprint
        return chunk

"""Cohere's Chat API v2 stream (``"stream": true``) as canonical chunks.

Cohere's "Streaming" and "Streaming for tool use" guides: SSE events whose data has
a ``type``: ``message-start`` (the id), ``content-start`` / ``content-delta``
(``delta.message.content.text``; a ``thinking`` block's deltas are left out) /
``content-end``, ``tool-plan-delta`` (the text before tool calls: content, as in
:mod:`.cohere`),
``tool-call-start`` (``delta.message.tool_calls``: id and name) / ``tool-call-delta``
(argument pieces) / ``tool-call-end``, ``citation-start`` / ``citation-end`` and
``debug`` (left out), and ``message-end`` with ``delta.finish_reason`` and
``delta.usage``: the end marker.  A body that ends without it was cut.

``message-end`` gives the finish chunk and the usage chunk at once; a finish reason
of ``ERROR`` or ``TIMEOUT`` raises :class:`~campusgate.ai.errors.ProviderError` from
:meth:`CohereStreamDecoder.feed` with the usage kept (:mod:`.cohere_response`).
"""

from __future__ import annotations

import time
import uuid

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.cohere_response import cohere_usage, finish_reason
from campusgate.ai.providers.json_wire import json_events
from campusgate.ai.sse import SseParser
from campusgate.ai.types import ChatChunk, Json, chat_chunk

__all__ = ["CohereStreamDecoder"]


class CohereStreamDecoder:
    """One streamed ``/v2/chat`` answer, fed its bytes in any split."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._parser = SseParser()
        self._id = ""
        self._created = int(time.time())
        self._thinking: set[int] = set()  # content indexes of thinking blocks
        self._calls: dict[int, int] = {}  # Cohere's tool-call index -> ours
        self._usage: Json | None = None
        self._ended = False

    @property
    def usage(self) -> Json | None:
        return self._usage

    def feed(self, data: bytes) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        for body in json_events(self._parser, data, "cohere"):
            out += self._event(body)
        return out

    def finish(self) -> list[ChatChunk]:
        self._parser.close()
        if not self._ended:
            raise ProviderError("bad_response", "the stream was cut before Cohere's "
                                "message-end", provider="cohere")
        return []

    def _chunk(self, delta: Json, reason: str | None = None) -> ChatChunk:
        return chat_chunk(id=self._id, model=self._model, created=self._created,
                          delta=delta, finish_reason=reason)

    def _event(self, body: Json) -> list[ChatChunk]:
        kind = body.get("type")
        out: list[ChatChunk] = []
        if not self._id:
            self._id = "chatcmpl-" + str(body.get("id") or uuid.uuid4().hex)
            out.append(self._chunk({"role": "assistant", "content": ""}))
        message = (body.get("delta") or {}).get("message") or {}
        index = int(body.get("index") or 0)
        if kind == "content-start":
            if (message.get("content") or {}).get("type") == "thinking":
                self._thinking.add(index)
        elif kind == "content-delta" and index not in self._thinking:
            text = (message.get("content") or {}).get("text")
            if text:
                out.append(self._chunk({"content": text}))
        elif kind == "tool-plan-delta" and message.get("tool_plan"):
            out.append(self._chunk({"content": message["tool_plan"]}))
        elif kind in ("tool-call-start", "tool-call-delta"):
            out += self._tool_call(kind, index, message.get("tool_calls") or {})
        elif kind == "message-end":
            self._ended = True
            delta = body.get("delta") or {}
            self._usage = cohere_usage(delta.get("usage"))
            reason = finish_reason(delta.get("finish_reason"), bool(self._calls),
                                   str(delta.get("error") or ""))
            out.append(self._chunk({}, reason))
            if self._usage is not None:
                out.append(chat_chunk(id=self._id, model=self._model,
                                      created=self._created, usage=self._usage))
        elif kind == "error" or (kind is None and "message" in body):
            raise ProviderError("server", str(body.get("message") or body),
                                provider="cohere")
        return out

    def _tool_call(self, kind: str, index: int, call: Json) -> list[ChatChunk]:
        function = call.get("function") or {}
        if kind == "tool-call-start":
            ours = self._calls.setdefault(index, len(self._calls))
            return [self._chunk({"tool_calls": [{
                "index": ours, "id": call.get("id") or f"call_{ours}", "type": "function",
                "function": {"name": function.get("name", ""),
                             "arguments": function.get("arguments") or ""}}]})]
        if index not in self._calls or not function.get("arguments"):
            return []
        return [self._chunk({"tool_calls": [{
            "index": self._calls[index],
            "function": {"arguments": function["arguments"]}}]})]

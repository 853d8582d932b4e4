"""Gemini's ``streamGenerateContent?alt=sse`` as canonical chunks.

Gemini API reference, "Generating content > models.streamGenerateContent": each SSE
event's data is a whole ``GenerateContentResponse`` carrying the new piece:
``candidates[0].content.parts`` with text to append (and whole ``functionCall``
parts: Gemini does not split a call's arguments), ``usageMetadata`` running totals
(the last one is final), and ``finishReason`` in the last candidate chunk.  There is
no end-of-stream event: a ``finishReason`` (or a ``promptFeedback.blockReason``) is
the only sign that the answer is complete, so a stream without one was cut.

Chunks: the role first, then text and tool calls as they come; the finish reason and
the usage chunk when the body ends (:meth:`GeminiStreamDecoder.finish`), since a
usage-only event may still follow the one with the ``finishReason``.  An ``error``
object inside the stream raises :class:`~campusgate.ai.errors.ProviderError`.
"""

from __future__ import annotations

import time
import uuid

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.gemini_response import (
    error_from,
    finish_reason,
    gemini_usage,
    message_parts,
)
from campusgate.ai.providers.json_wire import json_events
from campusgate.ai.sse import SseParser
from campusgate.ai.types import ChatChunk, Json, chat_chunk

__all__ = ["GeminiStreamDecoder"]


class GeminiStreamDecoder:
    """One ``streamGenerateContent`` answer, fed its bytes in any split."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._parser = SseParser()
        self._id = ""
        self._created = int(time.time())
        self._calls = 0
        self._reason: str | None = None
        self._meta: Json | None = None

    @property
    def usage(self) -> Json | None:
        return gemini_usage(self._meta)

    def feed(self, data: bytes) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        for body in json_events(self._parser, data, "gemini"):
            out += self._event(body)
        return out

    def finish(self) -> list[ChatChunk]:
        self._parser.close()
        if self._reason is None:
            raise ProviderError("bad_response", "the stream was cut before Gemini gave a "
                                "finishReason", provider="gemini")
        out = [self._chunk({}, self._reason)]
        if self._meta:
            out.append(chat_chunk(id=self._id, model=self._model, created=self._created,
                                  usage=self.usage))
        return out

    def _chunk(self, delta: Json, reason: str | None = None) -> ChatChunk:
        return chat_chunk(id=self._id, model=self._model, created=self._created,
                          delta=delta, finish_reason=reason)

    def _event(self, body: Json) -> list[ChatChunk]:
        if "error" in body:
            raise error_from(0, None, body)
        if body.get("usageMetadata"):
            self._meta = body["usageMetadata"]
        out: list[ChatChunk] = []
        if not self._id:
            self._id = "chatcmpl-" + str(body.get("responseId") or uuid.uuid4().hex)
            out.append(self._chunk({"role": "assistant", "content": ""}))
        candidates = body.get("candidates") or []
        if not candidates:
            if (body.get("promptFeedback") or {}).get("blockReason"):
                self._reason = "content_filter"
            return out
        candidate = candidates[0]
        text, calls = message_parts((candidate.get("content") or {}).get("parts") or [],
                                    self._calls)
        if text:
            out.append(self._chunk({"content": text}))
        if calls:
            for n, call in enumerate(calls, start=self._calls):
                call["index"] = n
            self._calls += len(calls)
            out.append(self._chunk({"tool_calls": calls}))
        if candidate.get("finishReason"):
            self._reason = finish_reason(candidate["finishReason"], self._calls > 0)
        return out

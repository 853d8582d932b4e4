"""Bedrock ``ConverseStream`` -> canonical chunks, sans-IO.

The body is an AWS event stream (:mod:`.eventstream`).  Each message has
``:message-type`` ``event``, ``exception`` or ``error``; an event's ``:event-type`` is
a member of ``ConverseStreamOutput`` (API reference) and its payload that member's JSON
(Bedrock adds a ``p`` padding field, ignored):

=======================  ==============================================================
``messageStart``         the first chunk, ``delta {role: assistant, content: ""}``
``contentBlockStart``    ``start.toolUse {toolUseId, name}``: a tool call's first
                         chunk (``id``, ``name``, ``arguments: ""``), numbered in order
``contentBlockDelta``    ``delta.text`` -> ``content``; ``delta.toolUse.input`` (a
                         piece of the JSON string) -> that call's ``arguments``;
                         ``reasoningContent`` and citations are dropped
``contentBlockStop``     nothing
``messageStop``          ``stopReason`` -> the chunk with ``finish_reason``
                         (:func:`.bedrock.finish_reason`): the stream's end marker
``metadata``             ``usage`` (after ``messageStop``) -> the usage chunk
=======================  ==============================================================

An ``exception`` message (``:exception-type`` ``throttlingException``,
``modelStreamErrorException``, ``validationException``, ``internalServerException``,
``serviceUnavailableException``, ``modelTimeoutException``; payload ``{"message"}``)
or an ``error`` message (``:error-code``, ``:error-message``) raises
:class:`~campusgate.ai.errors.ProviderError` from :meth:`feed`.  A body that ends
before ``messageStop`` raises ``bad_response`` from :meth:`finish`; :attr:`usage` is
None until ``metadata`` arrives (Bedrock reports usage nowhere else).
"""

from __future__ import annotations

import json
import uuid

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.bedrock import error_kind, finish_reason, usage_of
from campusgate.ai.providers.eventstream import EventStreamDecoder, EventStreamError, Message
from campusgate.ai.types import ChatChunk, Json, chat_chunk

__all__ = ["ConverseStreamDecoder"]


class ConverseStreamDecoder:
    """One ``ConverseStream`` body, fed in any split."""

    def __init__(self, model: str, *, created: int) -> None:
        self._frames = EventStreamDecoder()
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._model = model
        self._created = created
        self._started = False
        self._stopped = False
        self._usage: Json | None = None
        #: contentBlockIndex -> the tool call's index among the tool calls.
        self._calls: dict[int, int] = {}

    @property
    def usage(self) -> Json | None:
        return self._usage

    def feed(self, data: bytes) -> list[ChatChunk]:
        try:
            messages = self._frames.feed(data)
        except EventStreamError as exc:
            raise ProviderError("bad_response", str(exc), provider="bedrock") from exc
        chunks: list[ChatChunk] = []
        for message in messages:
            chunks += self._message(message)
        return chunks

    def finish(self) -> list[ChatChunk]:
        if not self._stopped:
            raise ProviderError("bad_response", "the stream was cut before messageStop",
                                provider="bedrock")
        return []

    def _chunk(self, delta: Json | None = None, finish: str | None = None,
               usage: Json | None = None) -> ChatChunk:
        return chat_chunk(id=self._id, model=self._model, created=self._created,
                          delta=delta, finish_reason=finish, usage=usage)

    def _delta(self, delta: Json) -> list[ChatChunk]:
        """A delta, preceded by the role chunk if ``messageStart`` never came."""
        first = [] if self._started else [self._chunk({"role": "assistant",
                                                       "content": ""})]
        self._started = True
        return [*first, self._chunk(delta)]

    def _message(self, message: Message) -> list[ChatChunk]:
        kind = message.header(":message-type")
        if kind == "exception":
            raise self._exception(message.header(":exception-type"), message.payload)
        if kind == "error":
            code = message.header(":error-code")
            text = message.header(":error-message") or code
            raise ProviderError(error_kind(code, 500, text), text, provider="bedrock",
                                code=code or None)
        if kind != "event":
            return []
        try:
            payload = json.loads(message.payload or b"{}")
        except ValueError as exc:
            raise ProviderError("bad_response", f"an event that is not JSON: {exc}",
                                provider="bedrock") from exc
        event = message.header(":event-type")
        if event == "messageStart":
            if self._started:
                return []
            self._started = True
            return [self._chunk({"role": "assistant", "content": ""})]
        if event == "contentBlockStart":
            tool = (payload.get("start") or {}).get("toolUse")
            if tool is None:
                return []
            index = self._calls.setdefault(payload.get("contentBlockIndex", 0),
                                           len(self._calls))
            return self._delta({"tool_calls": [{
                "index": index, "id": tool["toolUseId"], "type": "function",
                "function": {"name": tool["name"], "arguments": ""}}]})
        if event == "contentBlockDelta":
            return self._content(payload)
        if event == "messageStop":
            self._stopped = True
            return [self._chunk({}, finish_reason(payload.get("stopReason")))]
        if event == "metadata" and payload.get("usage") is not None:
            self._usage = usage_of(payload["usage"])
            return [self._chunk(usage=self._usage)]
        return []

    def _content(self, payload: Json) -> list[ChatChunk]:
        delta = payload.get("delta") or {}
        if delta.get("text"):
            return self._delta({"content": delta["text"]})
        piece = (delta.get("toolUse") or {}).get("input")
        block = payload.get("contentBlockIndex", 0)
        if piece and block in self._calls:
            return self._delta({"tool_calls": [{
                "index": self._calls[block], "function": {"arguments": piece}}]})
        return []

    @staticmethod
    def _exception(name: str, payload: bytes) -> ProviderError:
        try:
            body = json.loads(payload or b"{}")
        except ValueError:
            body = {}
        text = str(body.get("message") or body.get("Message") or name
                   if isinstance(body, dict) else name)
        status = 429 if name == "throttlingException" else 0
        return ProviderError(error_kind(name, 500, text), text, status=status,
                             provider="bedrock", code=name or None)

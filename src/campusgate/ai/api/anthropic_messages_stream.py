"""Canonical chunks as Anthropic's streamed Messages, event for event
("Streaming Messages"): ``message_start`` (the message, empty content, usage),
per block ``content_block_start`` / ``content_block_delta`` / ``content_block_stop``
with the block's index, ``message_delta`` (``stop_reason``, ``stop_sequence`` and
cumulative usage), ``message_stop``.

Text becomes a ``text`` block (``text_delta``), each tool call a ``tool_use`` block
(``input_json_delta`` with the arguments as they come); a new block closes the one
before.  A canonical stream reports usage only at its end, so ``message_start``
carries zeros and ``message_delta`` the final counts, input side included -- as the
API itself does since it repeats them there, and as the SDK's accumulator reads
them.  The shell writes :meth:`MessagesStreamEncoder.encode` per chunk,
:meth:`~MessagesStreamEncoder.finish` at the end, and
:meth:`~MessagesStreamEncoder.error` if the upstream fails mid-way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from campusgate.ai.api.anthropic_messages import matched_stop_sequence
from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.anthropic_wire import messages_usage, stop_reason
from campusgate.ai.sse import encode_event
from campusgate.ai.types import ChatChunk, Json

__all__ = ["MessagesStreamEncoder"]


def _event(data: Json) -> bytes:
    return encode_event(json.dumps(data, ensure_ascii=False, separators=(",", ":")),
                        event=data["type"])


class MessagesStreamEncoder:
    """One canonical stream -> Anthropic event-stream bytes."""

    def __init__(self, request: Mapping[str, Any]) -> None:
        #: The client's Messages request (its model and stop sequences).
        self._request = request
        self._started = False
        self._finished = False
        self._blocks = 0
        #: The open block: ("text", -1) or ("tool", tool call index); None when none.
        self._open: tuple[str, int] | None = None
        self._open_index = -1
        #: Tool call index -> block index.
        self._tools: dict[int, int] = {}
        self._finish: str | None = None
        self._choice: Json = {}
        self._usage: Json | None = None

    def encode(self, chunk: ChatChunk) -> bytes:
        out = [self._start(chunk)] if not self._started else []
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if text:
                out.append(self._text(text))
            for call in delta.get("tool_calls") or []:
                out.append(self._tool(call))
            if choice.get("finish_reason") is not None:
                self._finish = choice["finish_reason"]
                self._choice = choice
        return b"".join(out)

    def finish(self) -> bytes:
        """The closing events: the open block's stop, ``message_delta``,
        ``message_stop``."""
        if self._finished:
            return b""
        self._finished = True
        out = [self._start({}) if not self._started else b"", self._close()]
        sequence = matched_stop_sequence(self._choice, self._request)
        out.append(_event({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(self._finish, sequence),
                      "stop_sequence": sequence},
            "usage": messages_usage(self._usage)}))
        out.append(_event({"type": "message_stop"}))
        return b"".join(out)

    def error(self, error: ProviderError) -> bytes:
        """An ``event: error`` for a failure after the stream began."""
        self._finished = True
        return _event(error.anthropic_body())

    def _start(self, chunk: Mapping[str, Any]) -> bytes:
        self._started = True
        return _event({"type": "message_start", "message": {
            "id": chunk.get("id") or "msg_campusgate", "type": "message",
            "role": "assistant", "model": chunk.get("model") or self._request.get("model"),
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": messages_usage(None)}})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event({"type": "content_block_stop", "index": self._open_index})

    def _begin(self, key: tuple[str, int], block: Json) -> bytes:
        closed = self._close()
        self._open, self._open_index = key, self._blocks
        self._blocks += 1
        return closed + _event({"type": "content_block_start", "index": self._open_index,
                                "content_block": block})

    def _text(self, text: str) -> bytes:
        head = b"" if self._open == ("text", -1) else self._begin(
            ("text", -1), {"type": "text", "text": ""})
        return head + _event({"type": "content_block_delta", "index": self._open_index,
                              "delta": {"type": "text_delta", "text": text}})

    def _tool(self, call: Mapping[str, Any]) -> bytes:
        position = int(call.get("index", 0))
        function = call.get("function") or {}
        head = b""
        if position not in self._tools:
            head = self._begin(("tool", position), {
                "type": "tool_use", "id": call.get("id") or f"toolu_{position}",
                "name": function.get("name") or "", "input": {}})
            self._tools[position] = self._open_index
        arguments = function.get("arguments") or ""
        if not arguments:
            return head
        return head + _event({"type": "content_block_delta",
                              "index": self._tools[position],
                              "delta": {"type": "input_json_delta",
                                        "partial_json": arguments}})

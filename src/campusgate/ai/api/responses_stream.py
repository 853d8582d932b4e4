"""Canonical chunks as the OpenAI Responses API's streaming events, sans-IO.

OpenAI API reference, "Responses" -> "Streaming events"; the openai SDK's
``lib/streaming/responses`` (how a client rebuilds the response from them).  The
events, each an SSE event named by its ``type`` with a ``sequence_number`` from 0:

- ``response.created``, ``response.in_progress`` (the response, ``in_progress``,
  no output) -- before the first chunk;
- text: ``response.output_item.added`` (a ``message`` item), ``response.content_part.
  added`` (an empty ``output_text``), ``response.output_text.delta`` per piece, and on
  closing ``response.output_text.done``, ``response.content_part.done``,
  ``response.output_item.done``; a refusal the same with ``refusal`` parts and
  ``response.refusal.delta``/``.done``;
- each tool call: ``response.output_item.added`` (a ``function_call`` item),
  ``response.function_call_arguments.delta`` per piece, ``response.function_call_
  arguments.done``, ``response.output_item.done``;
- ``response.completed`` with the whole response and its usage -- or, as OpenAI does,
  ``response.incomplete`` when the finish reason was ``length`` / ``content_filter``;
  after a failure, :meth:`ResponsesStreamEncoder.fail` sends ``error`` and
  ``response.failed``.

An item is closed when the next one begins or the finish reason comes: the canonical
stream sends a tool call's pieces together, so a piece for a call already closed is a
``bad_response``.  The final event waits for the usage chunk, which follows the finish
reason: the shell calls :meth:`finish` when the upstream stream has ended.
"""

from __future__ import annotations

import json
import time

from campusgate.ai.api import responses_objects as objects
from campusgate.ai.errors import ProviderError
from campusgate.ai.sse import encode_event
from campusgate.ai.types import ChatChunk, Json

__all__ = ["ResponsesStreamEncoder"]

#: ``response.error.code`` per error kind (the SDK's ``ResponseError.code``).
_ERROR_CODE = {"rate_limited": "rate_limit_exceeded"}


class ResponsesStreamEncoder:
    """One canonical stream as Responses events (SSE bytes)."""

    def __init__(self, request: Json, *, model: str | None = None,
                 response_id: str | None = None, created: int | None = None) -> None:
        self._request = request
        self._model = model or str(request.get("model") or "")
        self._id = response_id or objects.new_response_id()
        self._suffix = self._id.removeprefix("resp_")
        self._created = int(time.time()) if created is None else created
        self._seq = 0
        self._started = False
        self._output: list[Json] = []
        #: The open item: its output index, and for a message the open part's kind.
        self._open: int | None = None
        self._part: str | None = None
        self._calls: dict[int, int] = {}
        self._finish: str | None = None
        self._usage: Json | None = None
        self._out: list[bytes] = []

    def feed(self, chunk: ChatChunk) -> bytes:
        """The events of one canonical chunk."""
        self._start()
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self._text("output_text", delta["content"])
            if delta.get("refusal"):
                self._text("refusal", delta["refusal"])
            for call in delta.get("tool_calls") or []:
                self._call(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
                self._close()
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        return self._flush()

    def finish(self) -> bytes:
        """The upstream ended: ``response.completed`` (or ``response.incomplete``)."""
        self._start()
        self._close()
        status, incomplete = objects.status_of(self._finish)
        usage = objects.responses_usage(self._usage)
        self._emit("response.completed" if status == "completed" else "response.incomplete",
                   response=self._response(status, usage, incomplete))
        return self._flush()

    def fail(self, error: ProviderError) -> bytes:
        """The upstream failed mid-way: ``error`` then ``response.failed``."""
        self._start()
        code = _ERROR_CODE.get(error.kind, "server_error")
        self._emit("error", code=code, message=error.message, param=None)
        failure = self._response("failed", objects.responses_usage(self._usage), None)
        failure["error"] = {"code": code, "message": error.message}
        self._emit("response.failed", response=failure)
        return self._flush()

    # -- items --------------------------------------------------------------------
    def _text(self, kind: str, piece: str) -> None:
        item = self._output[self._open] if self._open is not None else None
        if item is None or item["type"] != "message":
            self._close()
            item = objects.message_item(f"msg_{self._suffix}_{len(self._output)}",
                                        "in_progress", None, None)
            self._open = len(self._output)
            self._output.append(item)
            self._emit("response.output_item.added", output_index=self._open, item=item)
        if self._part != kind:
            self._close_part()
            part = ({"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                    if kind == "output_text" else {"type": "refusal", "refusal": ""})
            item["content"].append(part)
            self._part = kind
            self._emit("response.content_part.added", **self._where(), part=dict(part))
        part = item["content"][-1]
        field = "text" if kind == "output_text" else "refusal"
        part[field] += piece
        if kind == "output_text":
            self._emit("response.output_text.delta", **self._where(), delta=piece,
                       logprobs=[])
        else:
            self._emit("response.refusal.delta", **self._where(), delta=piece)

    def _call(self, call: Json) -> None:
        index = call["index"]
        function = call.get("function") or {}
        if index not in self._calls:
            self._close()
            item = objects.call_item(f"fc_{self._suffix}_{len(self._output)}", "in_progress",
                                     call.get("id") or "", function.get("name") or "", "")
            self._open = self._calls[index] = len(self._output)
            self._output.append(item)
            self._emit("response.output_item.added", output_index=self._open, item=dict(item))
        elif self._calls[index] != self._open:
            raise ProviderError("bad_response", f"tool call {index} went on after the next "
                                "output began")
        item = self._output[self._calls[index]]
        if function.get("name") and not item["name"]:
            item["name"] = function["name"]
        if function.get("arguments"):
            item["arguments"] += function["arguments"]
            self._emit("response.function_call_arguments.delta", item_id=item["id"],
                       output_index=self._open, delta=function["arguments"])

    def _close(self) -> None:
        if self._open is None:
            return
        item = self._output[self._open]
        if item["type"] == "message":
            self._close_part()
            incomplete = objects.status_of(self._finish)[0] == "incomplete"
            item["status"] = "incomplete" if incomplete else "completed"
        else:
            self._emit("response.function_call_arguments.done", item_id=item["id"],
                       output_index=self._open, name=item["name"],
                       arguments=item["arguments"])
            item["status"] = "completed"
        self._emit("response.output_item.done", output_index=self._open, item=item)
        self._open = None

    def _close_part(self) -> None:
        if self._part is None or self._open is None:
            return
        part = self._output[self._open]["content"][-1]
        if self._part == "output_text":
            self._emit("response.output_text.done", **self._where(), text=part["text"],
                       logprobs=[])
        else:
            self._emit("response.refusal.done", **self._where(), refusal=part["refusal"])
        self._emit("response.content_part.done", **self._where(), part=part)
        self._part = None

    def _where(self) -> Json:
        assert self._open is not None
        item = self._output[self._open]
        return {"item_id": item["id"], "output_index": self._open,
                "content_index": len(item["content"]) - 1}

    # -- events -------------------------------------------------------------------
    def _start(self) -> None:
        if not self._started:
            self._started = True
            for kind in ("response.created", "response.in_progress"):
                self._emit(kind, response=self._response("in_progress", None, None))

    def _response(self, status: str, usage: Json | None, incomplete: Json | None) -> Json:
        output = [json.loads(json.dumps(item)) for item in self._output] \
            if status != "in_progress" else []
        return objects.response_object(self._request, id=self._id, created=self._created,
                                       model=self._model, status=status, usage=usage,
                                       output=output, incomplete_details=incomplete)

    def _emit(self, kind: str, **fields: object) -> None:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        self._out.append(encode_event(json.dumps(event, separators=(",", ":"),
                                                 ensure_ascii=False), event=kind))

    def _flush(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

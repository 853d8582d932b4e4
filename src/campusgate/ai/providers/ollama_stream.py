"""Ollama's streamed ``/api/chat`` answer -> canonical chunks, sans-IO.

The body is NDJSON (``application/x-ndjson``, ``docs/api.md`` "Generate a chat
completion", ``docs/api/streaming.mdx``): one ``ChatResponse`` object per line.  Lines
with ``done: false`` carry a piece of ``message.content`` and, for tool calls, whole
``message.tool_calls`` (Ollama does not split a call's arguments); the line with
``done: true`` carries ``done_reason`` and the counts, and ends the stream.  A line
``{"error": "..."}`` is an error after the status was sent (``docs/api/errors.mdx``).
"""

from __future__ import annotations

import json
import uuid

from campusgate.ai.errors import ErrorKind, ProviderError
from campusgate.ai.types import ChatChunk, Json, chat_chunk, usage

__all__ = ["MAX_LINE", "OllamaStreamDecoder", "error_kind", "finish_reason", "logprobs",
           "tool_call"]

#: Longest line accepted (bytes).
MAX_LINE = 4 * 1024 * 1024
_BY_STATUS: dict[int, ErrorKind] = {400: "bad_request", 401: "auth", 403: "permission",
                                    404: "not_found", 429: "rate_limited",
                                    503: "overloaded", 504: "timeout"}


def error_kind(status: int, message: str) -> ErrorKind:
    """The kind of an Ollama error by status, and its words for a prompt too long."""
    kind = _BY_STATUS.get(status, "server" if status >= 500 or status == 0
                          else "bad_request")
    lowered = message.lower()
    if kind in ("bad_request", "server") and (
            "context length" in lowered or "context window" in lowered
            or "exceeds the context" in lowered):
        return "context_length"
    return kind


def finish_reason(done_reason: str | None, tool_calls: bool) -> str:
    """``length`` stays ``length``; anything else (``stop``, ``load``, ``unload``,
    none) is ``stop`` -- or ``tool_calls`` when the answer called tools."""
    if done_reason == "length":
        return "length"
    return "tool_calls" if tool_calls else "stop"


def tool_call(call: Json, index: int | None = None) -> Json:
    """An Ollama tool call (``arguments`` an object) as OpenAI's (a JSON string)."""
    function = call.get("function") or {}
    arguments = function.get("arguments")
    out: Json = {"id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
                 "type": "function",
                 "function": {"name": function.get("name", ""),
                              "arguments": arguments if isinstance(arguments, str)
                              else json.dumps(arguments or {})}}
    return out if index is None else {"index": index, **out}


def logprobs(tokens: list[Json]) -> Json:
    """Ollama's ``logprobs`` list as OpenAI's ``choices[].logprobs``."""

    def one(token: Json) -> Json:
        return {"token": token.get("token", ""), "logprob": token.get("logprob", 0.0),
                "bytes": token.get("bytes")}

    return {"content": [{**one(token), "top_logprobs": [
        one(top) for top in token.get("top_logprobs") or []]} for token in tokens],
        "refusal": None}


class OllamaStreamDecoder:
    """One streamed ``/api/chat`` body, fed in any split."""

    def __init__(self, model: str, *, created: int) -> None:
        self._buffer = b""
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._model = model
        self._created = created
        self._started = False
        self._done = False
        self._calls = 0
        self._usage: Json | None = None

    @property
    def usage(self) -> Json | None:
        return self._usage

    def feed(self, data: bytes) -> list[ChatChunk]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > MAX_LINE:
            raise ProviderError("bad_response", f"an NDJSON line longer than {MAX_LINE} "
                                "bytes", provider="ollama")
        chunks: list[ChatChunk] = []
        for line in lines:
            chunks += self._line(line)
        return chunks

    def finish(self) -> list[ChatChunk]:
        rest, self._buffer = self._buffer, b""
        try:
            chunks = self._line(rest)  # a last line without its newline
        except ProviderError as exc:
            if exc.kind != "bad_response":
                raise
            chunks = []  # half a line: the stream was cut in it
        if not self._done:
            raise ProviderError("bad_response", "the stream was cut before done: true",
                                provider="ollama")
        return chunks

    def _chunk(self, delta: Json | None = None, finish: str | None = None,
               usage: Json | None = None) -> ChatChunk:
        return chat_chunk(id=self._id, model=self._model, created=self._created,
                          delta=delta, finish_reason=finish, usage=usage)

    def _line(self, raw: bytes) -> list[ChatChunk]:
        if not raw.strip() or self._done:
            return []
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ProviderError("bad_response", f"an NDJSON line that is not JSON: {exc}",
                                provider="ollama") from exc
        if not isinstance(data, dict):
            raise ProviderError("bad_response", "an NDJSON line that is not an object",
                                provider="ollama")
        if data.get("error"):
            error = str(data["error"])
            raise ProviderError(error_kind(0, error), error, provider="ollama")
        chunks: list[ChatChunk] = []
        if not self._started:
            self._started = True
            chunks.append(self._chunk({"role": "assistant", "content": ""}))
        message = data.get("message") or {}
        if message.get("content"):
            chunks.append(self._chunk({"content": message["content"]}))
            if data.get("logprobs"):
                chunks[-1]["choices"][0]["logprobs"] = logprobs(data["logprobs"])
        calls = message.get("tool_calls") or []
        if calls:
            delta = [tool_call(call, self._calls + n) for n, call in enumerate(calls)]
            self._calls += len(calls)
            chunks.append(self._chunk({"tool_calls": delta}))
        if data.get("done"):
            self._done = True
            self._usage = usage(int(data.get("prompt_eval_count") or 0),
                                int(data.get("eval_count") or 0))
            chunks.append(self._chunk(
                {}, finish_reason(data.get("done_reason"), self._calls > 0)))
            chunks.append(self._chunk(usage=self._usage))
        return chunks

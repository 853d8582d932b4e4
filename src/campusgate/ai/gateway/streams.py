"""Canonical chunks re-encoded for the client's API, one encoder per stream.

Each encoder turns a canonical ``chat.completion.chunk`` into the bytes to write
(:meth:`ChunkEncoder.chunk`), closes the stream (:meth:`~ChunkEncoder.end`), or ends it
with an error event in the client's shape after bytes were sent
(:meth:`~ChunkEncoder.fail`).  OpenAI's is here; Anthropic's and the Responses API's
wrap the encoders of :mod:`campusgate.ai.api`.

OpenAI's stream (API reference, "The chat completion chunk object"): ``data: {json}``
per chunk, ``data: [DONE]`` last; the usage chunk (``choices: []``) only when the
client asked ``stream_options.include_usage`` -- the gateway always asks the provider
for usage, to account it.  An error after the head: ``data: {"error": {...}}``, as
OpenAI itself sends and the ``openai`` SDK raises as an ``APIError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from campusgate.ai.api.anthropic_messages_stream import MessagesStreamEncoder
from campusgate.ai.api.responses_stream import ResponsesStreamEncoder
from campusgate.ai.errors import ProviderError
from campusgate.ai.gateway.replies import ApiShape
from campusgate.ai.json_codec import dumps
from campusgate.ai.types import ChatChunk

__all__ = ["AnthropicEncoder", "ChunkEncoder", "OpenAiEncoder", "ResponsesEncoder",
           "encoder_for"]

DONE = b"data: [DONE]\n\n"


class ChunkEncoder(Protocol):
    def chunk(self, chunk: ChatChunk) -> bytes: ...

    def end(self) -> bytes: ...

    def fail(self, error: ProviderError) -> bytes: ...


def _data(payload: Any) -> bytes:
    return b"data: " + dumps(payload) + b"\n\n"


class OpenAiEncoder:
    """Chat Completions chunks as OpenAI's SSE, under the client's model name."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage

    def chunk(self, chunk: ChatChunk) -> bytes:
        if not self.include_usage:
            if not chunk.get("choices"):
                return b""  # the usage chunk, which the client did not ask for
            chunk.pop("usage", None)
        chunk["model"] = self.model
        return _data(chunk)

    def end(self) -> bytes:
        return DONE

    def fail(self, error: ProviderError) -> bytes:
        return _data(error.openai_body())


class AnthropicEncoder:
    """Anthropic Messages events (:class:`MessagesStreamEncoder`)."""

    def __init__(self, request: Mapping[str, Any]) -> None:
        self._inner = MessagesStreamEncoder(request)
        self._model = request.get("model")

    def chunk(self, chunk: ChatChunk) -> bytes:
        chunk["model"] = self._model
        return self._inner.encode(chunk)

    def end(self) -> bytes:
        return self._inner.finish()

    def fail(self, error: ProviderError) -> bytes:
        return self._inner.error(error)


class ResponsesEncoder:
    """Responses API events (:class:`ResponsesStreamEncoder`)."""

    def __init__(self, request: dict[str, Any]) -> None:
        self._inner = ResponsesStreamEncoder(request, model=str(request.get("model") or ""))

    def chunk(self, chunk: ChatChunk) -> bytes:
        return self._inner.feed(chunk)

    def end(self) -> bytes:
        return self._inner.finish()

    def fail(self, error: ProviderError) -> bytes:
        return self._inner.fail(error)


def encoder_for(shape: ApiShape, request: dict[str, Any], chat: Mapping[str, Any]
                ) -> ChunkEncoder:
    """The encoder for a client of ``shape`` that sent ``request`` (its own API's
    body) made canonical as ``chat``."""
    if shape == "anthropic":
        return AnthropicEncoder(request)
    if shape == "responses":
        return ResponsesEncoder(request)
    options = chat.get("stream_options") or {}
    include = isinstance(options, dict) and bool(options.get("include_usage"))
    return OpenAiEncoder(str(request.get("model") or ""), include)

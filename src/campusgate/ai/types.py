"""The canonical form: OpenAI Chat Completions' JSON, as plain dicts.

Every translation goes through it.  A request is the body of ``POST
/v1/chat/completions`` (``model``, ``messages``, ``tools``, ``tool_choice``,
``response_format``, ``stop``, ``temperature``, ``top_p``, ``max_tokens`` /
``max_completion_tokens``, ``n``, ``seed``, ``presence_penalty``,
``frequency_penalty``, ``stream``, ``stream_options``, ``user``, ...); a response is
its ``chat.completion`` object; a stream is a list of ``chat.completion.chunk``
objects.  The OpenAI API reference is the specification.

Rules every translator keeps, because clients rely on them:

- ``finish_reason`` is one of :data:`FINISH_REASONS` (a provider's own reasons are
  mapped, never passed through);
- ``usage`` is :func:`usage`'s shape: ``prompt_tokens`` counts every input token,
  cached ones included, and ``prompt_tokens_details.cached_tokens`` says how many of
  them were read from a cache (Anthropic and Bedrock report cache reads and writes
  apart from their input tokens: they are added in).  Tokens written to a cache,
  billed at their own rate, are also told in ``prompt_tokens_details.cache_write_tokens``
  (campusgate's extension, present only when non-zero; :mod:`campusgate.ai.pricing`);
- a stream's chunks carry ``delta`` pieces: the first has ``role: assistant``; tool
  calls come as ``delta.tool_calls[{index, id, type, function: {name, arguments}}]``
  with ``arguments`` split over chunks; the chunk with ``finish_reason`` comes after
  the content; when usage is known a last chunk with ``choices: []`` and ``usage``
  follows (the shell drops it when the client did not ask for
  ``stream_options.include_usage``).
"""

from __future__ import annotations

import time
from typing import Any, Final

__all__ = [
    "FINISH_REASONS",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "Json",
    "chat_chunk",
    "chat_response",
    "usage",
]

Json = dict[str, Any]
#: The body of ``POST /v1/chat/completions``.
ChatRequest = dict[str, Any]
#: A ``chat.completion`` object.
ChatResponse = dict[str, Any]
#: A ``chat.completion.chunk`` object.
ChatChunk = dict[str, Any]

FINISH_REASONS: Final = frozenset({"stop", "length", "tool_calls", "content_filter"})


def usage(prompt: int, completion: int, cached: int = 0, *,
          reasoning: int | None = None, cache_write: int = 0) -> Json:
    """OpenAI's usage object.  ``prompt`` counts all input tokens, ``cached`` those of
    them read from a cache and ``cache_write`` those written to one; ``reasoning``
    output tokens are part of ``completion``."""
    out: Json = {"prompt_tokens": prompt, "completion_tokens": completion,
                 "total_tokens": prompt + completion,
                 "prompt_tokens_details": {"cached_tokens": cached}}
    if cache_write:
        out["prompt_tokens_details"]["cache_write_tokens"] = cache_write
    if reasoning is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


def chat_response(*, id: str, model: str, message: Json, finish_reason: str,
                  usage: Json | None, created: int | None = None) -> ChatResponse:
    """A one-choice ``chat.completion``."""
    if finish_reason not in FINISH_REASONS:
        raise ValueError(f"finish_reason {finish_reason!r} is not OpenAI's")
    body: ChatResponse = {
        "id": id, "object": "chat.completion",
        "created": int(time.time()) if created is None else created, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason,
                     "logprobs": None}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def chat_chunk(*, id: str, model: str, created: int, delta: Json | None = None,
               finish_reason: str | None = None, usage: Json | None = None) -> ChatChunk:
    """One ``chat.completion.chunk``: a delta (and maybe a finish reason) for choice 0,
    or -- with ``delta`` None -- the usage chunk (``choices: []``)."""
    if finish_reason is not None and finish_reason not in FINISH_REASONS:
        raise ValueError(f"finish_reason {finish_reason!r} is not OpenAI's")
    chunk: ChatChunk = {"id": id, "object": "chat.completion.chunk", "created": created,
                        "model": model}
    if delta is None:
        chunk["choices"] = []
        chunk["usage"] = usage
    else:
        chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                             "logprobs": None}]
    return chunk

"""JSON answers, JSON over SSE, and OpenAI's embeddings input, as providers send and
take them.

:func:`read_json` reads a 2xx answer as a JSON object (anything else is
``bad_response``).
:func:`json_events` turns a stream's bytes into the JSON objects of its events (a
provider that sends anything else is ``bad_response``); :func:`embedding_texts`
reads ``POST /v1/embeddings``' ``input`` as the list of strings such providers embed
(token arrays, which only OpenAI reads, are a ``bad_request``).
"""

from __future__ import annotations

from collections.abc import Iterator

from campusgate.ai.errors import ProviderError
from campusgate.ai.json_codec import loads
from campusgate.ai.sse import SseError, SseEvent, SseParser
from campusgate.ai.types import Json

__all__ = ["embedding_texts", "json_events", "read_json", "sse_events"]


def read_json(body: bytes, provider: str) -> Json:
    """A 2xx body as a JSON object, or ``bad_response``."""
    try:
        data = loads(body)
    except ValueError as exc:
        raise ProviderError("bad_response", f"the answer is not JSON: {exc}",
                            provider=provider) from None
    if not isinstance(data, dict):
        raise ProviderError("bad_response", "the answer is not a JSON object",
                            provider=provider)
    return data


def sse_events(parser: SseParser, data: bytes, provider: str) -> list[SseEvent]:
    """The events completed by ``data``; a stream that is not an event stream (a line
    past :data:`~campusgate.ai.sse.MAX_LINE`) is ``bad_response``."""
    try:
        return parser.feed(data)
    except SseError as exc:
        raise ProviderError("bad_response", f"{provider}: {exc}", provider=provider) from exc


def json_events(parser: SseParser, data: bytes, provider: str) -> Iterator[Json]:
    """The data of each event completed by ``data``, as a JSON object."""
    for event in sse_events(parser, data, provider):
        try:
            body = loads(event.data)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ProviderError("bad_response", f"{provider} sent a stream event that is "
                                "not a JSON object", provider=provider)
        yield body


def embedding_texts(request: Json, provider: str) -> list[str]:
    """The strings to embed: ``input`` as a string or a list of strings."""
    texts = request.get("input")
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ProviderError("bad_request", f"{provider} embeds text: input must be a "
                            "string or a list of strings", provider=provider)
    return texts

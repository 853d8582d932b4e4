"""What every provider module gives: a :class:`Translator`, sans-IO.

The shell (not in this package) picks a :class:`Deployment` (a provider, a model
there, a key), asks the translator for the :class:`UpstreamRequest` to send, sends
it, and hands the answer back to the translator:

- ``chat_request(request, deployment)``: the canonical request (OpenAI Chat
  Completions, :mod:`campusgate.ai.types`) as the provider's HTTP request.  The
  ``model`` sent is ``deployment.model``, not the client's alias.  Parameters the
  provider has no equivalent for are dropped (documented per module); parameters it
  cannot honour in a way the client would notice (e.g. ``n > 1`` where there is no
  such thing) raise :class:`~campusgate.ai.errors.ProviderError` ``bad_request``.
- ``chat_response(status, headers, body, deployment)``: a 2xx answer as a canonical
  ``chat.completion`` (``model`` = the deployment's model; the shell puts the
  client's name back); any other status, or a 2xx it cannot read, raises
  ``ProviderError`` (:meth:`Translator.error` makes it).
- ``chat_stream(deployment)``: a :class:`StreamDecoder` for a streamed 2xx answer,
  fed the body's bytes as they arrive, in any split.
- ``error(status, headers, body)``: the provider's error answer as a
  ``ProviderError`` of the right kind (429 -> ``rate_limited`` with
  ``retry_after``; the provider's context-length error -> ``context_length``; ...),
  keeping the provider's own message.
- ``embeddings_request`` / ``embeddings_response``: ``POST /v1/embeddings`` the same
  way; a provider without embeddings raises ``ProviderError`` ``bad_request``.

Headers are ``dict[str, str]`` with lowercase names.  No method does I/O; none keeps
state between calls except the stream decoder, which lives for one stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from campusgate.ai.errors import ProviderError
from campusgate.ai.types import ChatChunk, ChatRequest, ChatResponse, Json

__all__ = ["Deployment", "StreamDecoder", "Translator", "UpstreamRequest"]


@dataclass(frozen=True)
class Deployment:
    """One model at one provider, with the credentials to call it."""

    #: The provider type (``openai``, ``anthropic``, ``gemini``, ...).
    provider: str
    #: The model's name at the provider (Azure: the deployment name).
    model: str
    #: The provider's base URL, without a trailing slash (each module has a default).
    base_url: str
    #: The API key (or token); None where the provider needs none (Ollama).
    api_key: str | None = field(default=None, repr=False)
    #: Provider-specific settings: ``api_version`` (Azure), ``region``,
    #: ``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``
    #: (Bedrock), ``anthropic_version``, extra ``headers``, ...
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def extra_headers(self) -> Mapping[str, str]:
        """The ``headers`` option: names in lower case, values as text (made once per
        deployment, which lives as long as its config revision)."""
        return {str(k).lower(): str(v) for k, v in (self.options.get("headers") or {}).items()}

    @cached_property
    def memo(self) -> dict[tuple[str, str], Any]:
        """What a translator works out once per deployment rather than per call (its
        URL and headers for a path), keyed by (translator name, what)."""
        return {}


@dataclass(slots=True)
class UpstreamRequest:
    """One request to a provider, as a translator makes it (one per call: not frozen,
    whose ``__init__`` costs a ``object.__setattr__`` per field; nothing changes it)."""

    method: str
    #: Absolute URL.
    url: str
    headers: dict[str, str]
    body: bytes
    #: Whether the answer is a stream (the shell reads it incrementally).
    stream: bool = False


class StreamDecoder(Protocol):
    """One streamed answer, decoded incrementally into canonical chunks."""

    def feed(self, data: bytes) -> list[ChatChunk]:
        """The chunks completed by ``data`` (any split of the body).  Raises
        ``ProviderError`` when the provider reports an error inside the stream."""
        ...

    def finish(self) -> list[ChatChunk]:
        """The body ended: the last chunks (the finish reason, the usage chunk).  A
        stream that ended before the provider said it was complete raises
        ``ProviderError`` ``bad_response`` ("the stream was cut") -- after the
        chunks so far were fed, so the shell can still account their usage."""
        ...

    @property
    def usage(self) -> Json | None:
        """The usage known so far (canonical shape), even for a cut stream."""
        ...


class Translator(Protocol):
    #: The provider type it serves.
    name: str
    #: Its default base URL.
    default_base_url: str

    def chat_request(self, request: ChatRequest, deployment: Deployment
                     ) -> UpstreamRequest: ...

    def chat_response(self, status: int, headers: Mapping[str, str], body: bytes,
                      deployment: Deployment) -> ChatResponse: ...

    def chat_stream(self, deployment: Deployment) -> StreamDecoder: ...

    def error(self, status: int, headers: Mapping[str, str], body: bytes
              ) -> ProviderError: ...

    def embeddings_request(self, request: Json, deployment: Deployment
                           ) -> UpstreamRequest: ...

    def embeddings_response(self, status: int, headers: Mapping[str, str], body: bytes,
                            deployment: Deployment) -> Json: ...

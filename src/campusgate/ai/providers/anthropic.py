"""Anthropic's Messages API (``POST /v1/messages``) as a provider, sans-IO.

Requests: :mod:`.anthropic_request` (the mapping table is there).  Headers:
``x-api-key``, ``anthropic-version`` (the deployment's ``anthropic_version``
option, default :data:`ANTHROPIC_VERSION`), ``content-type``, plus the deployment's
extra ``headers`` (``anthropic-beta`` and the like).

Responses ("Create a Message", the ``Message`` object): ``text`` blocks are joined
into ``content``; ``tool_use`` blocks become ``tool_calls`` (``arguments`` is
``json.dumps(input)``); ``thinking`` and ``redacted_thinking`` blocks are dropped
(Chat Completions has no place for them and clients of it do not send them back);
server-tool blocks (``server_tool_use``, ``*_tool_result``) are dropped likewise.
Stop reasons, usage and errors: :mod:`.anthropic_wire`.  When the stop was a stop
sequence, the choice also carries it as ``stop_reason`` (vLLM's extension), which
the Anthropic-facing API uses to answer ``stop_reason: "stop_sequence"``.

Streams: :mod:`.anthropic_stream`.  No embeddings at Anthropic: bad_request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from campusgate.ai.errors import ProviderError
from campusgate.ai.json_codec import dumps
from campusgate.ai.providers.anthropic_request import DEFAULT_MAX_TOKENS, messages_body
from campusgate.ai.providers.anthropic_stream import AnthropicStreamDecoder
from campusgate.ai.providers.anthropic_wire import (
    PROVIDER,
    canonical_usage,
    error_from_body,
    finish_reason,
)
from campusgate.ai.providers.base import Deployment, UpstreamRequest
from campusgate.ai.providers.json_wire import read_json
from campusgate.ai.types import ChatRequest, ChatResponse, Json, chat_response

__all__ = ["ANTHROPIC", "ANTHROPIC_VERSION", "AnthropicTranslator"]

#: The ``anthropic-version`` header sent unless the deployment says otherwise.
ANTHROPIC_VERSION: Final = "2023-06-01"


def _message(content: list[Any]) -> Json:
    """The assistant message of a ``Message``'s content blocks."""
    text: list[str] = []
    calls: list[Json] = []
    for block in content:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text":
            text.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            calls.append({"id": block.get("id"), "type": "function", "function": {
                "name": block.get("name"),
                "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False)}})
    message: Json = {"role": "assistant",
                     "content": "".join(text) if text or not calls else None,
                     "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return message


class AnthropicTranslator:
    """The :class:`~campusgate.ai.providers.base.Translator` of type ``anthropic``."""

    name = PROVIDER
    default_base_url = "https://api.anthropic.com"

    def chat_request(self, request: ChatRequest, deployment: Deployment
                     ) -> UpstreamRequest:
        options = deployment.options
        body = messages_body(request, deployment.model,
                             int(options.get("max_tokens") or DEFAULT_MAX_TOKENS))
        headers = {"content-type": "application/json",
                   "anthropic-version": str(options.get("anthropic_version")
                                            or ANTHROPIC_VERSION)}
        if deployment.api_key:
            headers["x-api-key"] = deployment.api_key
        headers.update(deployment.extra_headers)
        base = (deployment.base_url or self.default_base_url).rstrip("/")
        return UpstreamRequest("POST", f"{base}/v1/messages", headers,
                               dumps(body),
                               stream=bool(body.get("stream")))

    def chat_response(self, status: int, headers: Mapping[str, str], body: bytes,
                      deployment: Deployment) -> ChatResponse:
        if not 200 <= status < 300:
            raise self.error(status, headers, body)
        data = read_json(body, PROVIDER)
        if data.get("type") == "error":
            raise self.error(status, headers, body)
        if not isinstance(data.get("content"), list):
            raise ProviderError("bad_response", "the answer has no content list",
                                status=status, provider=PROVIDER)
        out = chat_response(id=str(data.get("id") or ""), model=deployment.model,
                            message=_message(data["content"]),
                            finish_reason=finish_reason(data.get("stop_reason")),
                            usage=canonical_usage(data.get("usage") or {}))
        if data.get("stop_reason") == "stop_sequence" and data.get("stop_sequence"):
            out["choices"][0]["stop_reason"] = data["stop_sequence"]
        return out

    def chat_stream(self, deployment: Deployment) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder(deployment.model)

    def error(self, status: int, headers: Mapping[str, str], body: bytes
              ) -> ProviderError:
        return error_from_body(status, headers, body)

    def embeddings_request(self, request: Json, deployment: Deployment
                           ) -> UpstreamRequest:
        raise ProviderError("bad_request", "anthropic has no embeddings API",
                            status=400, provider=PROVIDER)

    def embeddings_response(self, status: int, headers: Mapping[str, str], body: bytes,
                            deployment: Deployment) -> Json:
        raise ProviderError("bad_request", "anthropic has no embeddings API",
                            status=400, provider=PROVIDER)


ANTHROPIC: Final = AnthropicTranslator()

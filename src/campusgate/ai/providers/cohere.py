"""Cohere (Chat API v2, Embed API v2), sans-IO.

Cohere API reference: "Chat" (``POST /v2/chat``, streaming with ``"stream":
true``), "Embed" (``POST /v2/embed``), "Errors"; the key as ``Authorization:
Bearer``.  The request mapping is :mod:`.cohere_request`, finish reasons, usage and
errors :mod:`.cohere_response`, the stream :mod:`.cohere_stream`; this module ties
them into the :class:`~.base.Translator` :data:`COHERE`.

A response's ``message.content`` holds ``text`` parts (joined) and, for reasoning
models, ``thinking`` parts (left out, as OpenAI's Chat Completions has no place for
them); ``message.tool_plan`` -- the text the model writes before its tool calls, as
Anthropic's text block before a ``tool_use`` -- is the content beside the tool calls
(and goes back as the ``tool_plan``, :mod:`.cohere_request`);
``message.tool_calls`` are OpenAI's shape already; ``citations`` are dropped.

Embeddings: OpenAI's ``input`` (strings only) as ``texts`` with ``input_type:
search_document`` (or the deployment option ``input_type``; Cohere's v3+ models
require one, and a gateway that embeds for retrieval stores documents),
``embedding_types: ["float"]``, ``dimensions`` as ``output_dimension``; usage from
``meta.billed_units.input_tokens``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.base import Deployment, UpstreamRequest
from campusgate.ai.providers.cohere_request import cohere_body
from campusgate.ai.providers.cohere_response import cohere_usage, error_from, finish_reason
from campusgate.ai.providers.cohere_stream import CohereStreamDecoder
from campusgate.ai.providers.json_wire import embedding_texts, read_json
from campusgate.ai.types import ChatRequest, ChatResponse, Json, chat_response, usage

__all__ = ["COHERE", "CohereTranslator"]


class CohereTranslator:
    """Chat Completions and embeddings <-> Cohere's v2 API."""

    name = "cohere"
    default_base_url = "https://api.cohere.com"

    def chat_request(self, request: ChatRequest, deployment: Deployment
                     ) -> UpstreamRequest:
        return self._post(deployment, "/v2/chat", cohere_body(request, deployment.model),
                          bool(request.get("stream")))

    def chat_response(self, status: int, headers: Mapping[str, str], body: bytes,
                      deployment: Deployment) -> ChatResponse:
        if not 200 <= status < 300:
            raise self.error(status, headers, body)
        data = read_json(body, self.name)
        reply = data.get("message") or {}
        content = reply.get("content") or []
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        text = "".join(p.get("text") or "" for p in content if p.get("type") == "text")
        text = text or str(reply.get("tool_plan") or "")
        calls = [{"id": c.get("id") or f"call_{n}", "type": "function",
                  "function": {"name": c["function"]["name"],
                               "arguments": c["function"].get("arguments") or "{}"}}
                 for n, c in enumerate(reply.get("tool_calls") or [])]
        message: Json = {"role": "assistant", "content": text or (None if calls else ""),
                         "refusal": None}
        if calls:
            message["tool_calls"] = calls
        reason = finish_reason(data.get("finish_reason"), bool(calls))
        return chat_response(id="chatcmpl-" + str(data.get("id") or uuid.uuid4().hex),
                             model=deployment.model, message=message,
                             finish_reason=reason, usage=cohere_usage(data.get("usage")),
                             created=int(time.time()))

    def chat_stream(self, deployment: Deployment) -> CohereStreamDecoder:
        return CohereStreamDecoder(deployment.model)

    def error(self, status: int, headers: Mapping[str, str], body: bytes
              ) -> ProviderError:
        return error_from(status, headers, body)

    def embeddings_request(self, request: Json, deployment: Deployment
                           ) -> UpstreamRequest:
        body: Json = {"model": deployment.model,
                      "texts": embedding_texts(request, self.name),
                      "input_type": deployment.options.get("input_type",
                                                           "search_document"),
                      "embedding_types": ["float"]}
        if request.get("dimensions"):
            body["output_dimension"] = request["dimensions"]
        return self._post(deployment, "/v2/embed", body, False)

    def embeddings_response(self, status: int, headers: Mapping[str, str], body: bytes,
                            deployment: Deployment) -> Json:
        if not 200 <= status < 300:
            raise self.error(status, headers, body)
        data = read_json(body, self.name)
        vectors = (data.get("embeddings") or {}).get("float") or []
        tokens = int(((data.get("meta") or {}).get("billed_units") or {})
                     .get("input_tokens") or 0)
        counted = usage(tokens, 0)
        return {"object": "list", "model": deployment.model,
                "data": [{"object": "embedding", "index": n, "embedding": vector}
                         for n, vector in enumerate(vectors)],
                "usage": {"prompt_tokens": counted["prompt_tokens"],
                          "total_tokens": counted["total_tokens"]}}

    def _post(self, deployment: Deployment, path: str, body: Json, stream: bool
              ) -> UpstreamRequest:
        base = (deployment.base_url or self.default_base_url).rstrip("/")
        headers = {"content-type": "application/json",
                   "accept": "text/event-stream" if stream else "application/json"}
        if deployment.api_key:
            headers["authorization"] = f"Bearer {deployment.api_key}"
        headers.update(deployment.extra_headers)
        return UpstreamRequest("POST", base + path,
                               headers, json.dumps(body, ensure_ascii=False).encode(),
                               stream)


COHERE = CohereTranslator()

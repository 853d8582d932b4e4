"""Google Gemini (the Gemini API, ``generativelanguage.googleapis.com``), sans-IO.

Gemini API reference: "Generating content" (``POST
/v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``),
"Embeddings" (``:batchEmbedContents``), "API keys" (the key in ``x-goog-api-key``).
The request mapping is :mod:`.gemini_request`, the response, usage, finish-reason and
error mappings :mod:`.gemini_response`, the stream :mod:`.gemini_stream`; this module
ties them into the :class:`~.base.Translator` :data:`GEMINI`.

Embeddings: OpenAI's ``input`` (a string or a list of strings; token arrays cannot be
sent) becomes one ``EmbedContentRequest`` per string, ``dimensions`` their
``outputDimensionality``; the answer's ``embeddings[].values`` become float lists.
Gemini reports no token usage for embeddings, so usage is 0 (the shell may count).
``encoding_format: base64`` is left to the shell (the answer has floats).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.base import Deployment, UpstreamRequest
from campusgate.ai.providers.gemini_request import gemini_body
from campusgate.ai.providers.gemini_response import (
    error_from,
    finish_reason,
    gemini_usage,
    message_parts,
)
from campusgate.ai.providers.gemini_stream import GeminiStreamDecoder
from campusgate.ai.providers.json_wire import embedding_texts, read_json
from campusgate.ai.types import ChatRequest, ChatResponse, Json, chat_response

__all__ = ["GEMINI", "GeminiTranslator"]


class GeminiTranslator:
    """Chat Completions and embeddings <-> the Gemini API."""

    name = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"

    def chat_request(self, request: ChatRequest, deployment: Deployment
                     ) -> UpstreamRequest:
        stream = bool(request.get("stream"))
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return self._post(deployment, method, gemini_body(request), stream)

    def chat_response(self, status: int, headers: Mapping[str, str], body: bytes,
                      deployment: Deployment) -> ChatResponse:
        if not 200 <= status < 300:
            raise self.error(status, headers, body)
        data = read_json(body, self.name)
        if "error" in data:
            raise error_from(status, headers, data)
        candidates = data.get("candidates") or []
        meta = data.get("usageMetadata")
        answer_id = "chatcmpl-" + str(data.get("responseId") or uuid.uuid4().hex)
        if not candidates:
            if not (data.get("promptFeedback") or {}).get("blockReason"):
                raise ProviderError("bad_response", "Gemini answered with no candidate",
                                    status, "gemini")
            return chat_response(id=answer_id, model=deployment.model,
                                 message={"role": "assistant", "content": "",
                                          "refusal": None},
                                 finish_reason="content_filter", usage=gemini_usage(meta))
        choices = []
        for index, candidate in enumerate(candidates):
            parts = (candidate.get("content") or {}).get("parts") or []
            text, calls = message_parts(parts)
            message: Json = {"role": "assistant", "content": text or None,
                             "refusal": None}
            if calls:
                message["tool_calls"] = calls
            elif text == "":
                message["content"] = ""
            choices.append({"index": candidate.get("index", index), "message": message,
                            "finish_reason": finish_reason(candidate.get("finishReason"),
                                                           bool(calls)),
                            "logprobs": None})
        answer = chat_response(id=answer_id, model=deployment.model,
                               message=choices[0]["message"],
                               finish_reason=choices[0]["finish_reason"],
                               usage=gemini_usage(meta), created=int(time.time()))
        answer["choices"] = choices
        return answer

    def chat_stream(self, deployment: Deployment) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(deployment.model)

    def error(self, status: int, headers: Mapping[str, str], body: bytes
              ) -> ProviderError:
        return error_from(status, headers, body)

    def embeddings_request(self, request: Json, deployment: Deployment
                           ) -> UpstreamRequest:
        texts = embedding_texts(request, self.name)
        model = f"models/{_model(deployment)}"
        requests = []
        for text in texts:
            one: Json = {"model": model, "content": {"parts": [{"text": text}]}}
            if request.get("dimensions"):
                one["outputDimensionality"] = request["dimensions"]
            requests.append(one)
        return self._post(deployment, "batchEmbedContents", {"requests": requests}, False)

    def embeddings_response(self, status: int, headers: Mapping[str, str], body: bytes,
                            deployment: Deployment) -> Json:
        if not 200 <= status < 300:
            raise self.error(status, headers, body)
        data = read_json(body, self.name)
        return {"object": "list", "model": deployment.model,
                "data": [{"object": "embedding", "index": n,
                          "embedding": item.get("values") or []}
                         for n, item in enumerate(data.get("embeddings") or [])],
                "usage": {"prompt_tokens": 0, "total_tokens": 0}}

    def _post(self, deployment: Deployment, method: str, body: Json, stream: bool
              ) -> UpstreamRequest:
        base = (deployment.base_url or self.default_base_url).rstrip("/")
        headers = {"content-type": "application/json"}
        if deployment.api_key:
            headers["x-goog-api-key"] = deployment.api_key
        headers.update(deployment.extra_headers)
        return UpstreamRequest("POST", f"{base}/models/{_model(deployment)}:{method}",
                               headers, json.dumps(body, ensure_ascii=False).encode(),
                               stream)


def _model(deployment: Deployment) -> str:
    return deployment.model.removeprefix("models/")


GEMINI = GeminiTranslator()

"""OpenAI (type ``openai``) and any OpenAI-compatible server by base URL (type
``openai-compatible``: vLLM, Groq, Together, DeepSeek, OpenRouter, xAI, Fireworks).

OpenAI API reference, "Chat Completions" (``POST /chat/completions``) and "Embeddings"
(``POST /embeddings``), ``Authorization: Bearer``.  The canonical request is already
OpenAI's, so the request is the client's with ``model`` set to the deployment's, and
when streaming ``stream_options.include_usage`` turned on (the issue: usage is taken
from the stream; the shell drops the usage chunk when the client did not ask).  A
server that rejects ``stream_options`` gets none with the deployment option
``stream_usage: false``; ``stream_options`` is dropped from a request that does not
stream (OpenAI refuses it there).  ``openai-compatible`` also sends
``max_completion_tokens`` as ``max_tokens`` and the ``developer`` role as ``system``,
the names every compatible server knows.  Its default base URL is vLLM's
(``http://127.0.0.1:8000/v1``); any other server needs its ``base_url``.
Extra headers come from the deployment option ``headers``.  ``n > 1`` is forwarded:
these servers answer several choices themselves.

Answers, streams and errors are made canonical by
:mod:`~campusgate.ai.providers.openai_family` and
:mod:`~campusgate.ai.providers.openai_stream`.
"""

from __future__ import annotations

from collections.abc import Mapping

from campusgate.ai.errors import ProviderError
from campusgate.ai.json_codec import dumps
from campusgate.ai.providers.base import Deployment, UpstreamRequest
from campusgate.ai.providers.openai_family import canonical_response, classify, read_json
from campusgate.ai.providers.openai_stream import OpenAIStreamDecoder
from campusgate.ai.types import ChatRequest, ChatResponse, Json

__all__ = ["OPENAI", "OPENAI_COMPATIBLE", "OpenAITranslator"]


class OpenAITranslator:
    """The Chat Completions wire format; Azure and Mistral adjust it in subclasses."""

    name: str = "openai"
    default_base_url: str = "https://api.openai.com/v1"
    #: Ask for usage in streams unless the deployment says ``stream_usage: false``.
    stream_usage: bool = True
    #: Send ``max_completion_tokens`` as ``max_tokens`` and role ``developer`` as
    #: ``system``: the names every compatible server knows.
    legacy_names: bool = False

    def __init__(self, name: str | None = None, default_base_url: str | None = None, *,
                 legacy_names: bool | None = None) -> None:
        self.name = name or type(self).name
        self.default_base_url = default_base_url or type(self).default_base_url
        if legacy_names is not None:
            self.legacy_names = legacy_names

    # -- what subclasses change -------------------------------------------------
    def url(self, deployment: Deployment, path: str) -> str:
        """The URL of ``path`` (``chat/completions``, ``embeddings``)."""
        return f"{deployment.base_url or self.default_base_url}/{path}"

    def headers(self, deployment: Deployment) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if deployment.api_key:
            headers["authorization"] = f"Bearer {deployment.api_key}"
        headers.update(deployment.extra_headers)
        return headers

    def chat_body(self, request: ChatRequest, deployment: Deployment) -> Json:
        body = dict(request)
        body["model"] = deployment.model
        if self.legacy_names:
            if "max_completion_tokens" in body:
                limit = body.pop("max_completion_tokens")
                body.setdefault("max_tokens", limit)
            body["messages"] = [{**m, "role": "system"} if m.get("role") == "developer" else m
                                for m in body.get("messages") or []]
        if not body.get("stream"):
            body.pop("stream_options", None)
        elif deployment.options.get("stream_usage", self.stream_usage):
            body["stream_options"] = {**(body.get("stream_options") or {}),
                                      "include_usage": True}
        else:
            body.pop("stream_options", None)
        return body

    def embeddings_body(self, request: Json, deployment: Deployment) -> Json:
        return {**request, "model": deployment.model}

    # -- the Translator protocol ---------------------------------------------------
    def _endpoint(self, deployment: Deployment, path: str) -> tuple[str, dict[str, str]]:
        """:meth:`url` and :meth:`headers`, worked out once per deployment: both
        depend on nothing else.  The headers are shared: nobody changes a request's."""
        key = (self.name, path)
        found: tuple[str, dict[str, str]] | None = deployment.memo.get(key)
        if found is None:
            found = deployment.memo[key] = (self.url(deployment, path),
                                            self.headers(deployment))
        return found

    def chat_request(self, request: ChatRequest, deployment: Deployment) -> UpstreamRequest:
        body = self.chat_body(request, deployment)
        url, headers = self._endpoint(deployment, "chat/completions")
        return UpstreamRequest("POST", url, headers, dumps(body),
                               stream=bool(body.get("stream")))

    def chat_response(self, status: int, headers: Mapping[str, str], body: bytes,
                      deployment: Deployment) -> ChatResponse:
        data = self._success(status, headers, body)
        return canonical_response(data, deployment.model, self.name)

    def chat_stream(self, deployment: Deployment) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder(deployment.model, self.name)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return classify(status, headers, body, self.name)

    def embeddings_request(self, request: Json, deployment: Deployment) -> UpstreamRequest:
        return UpstreamRequest("POST", self.url(deployment, "embeddings"),
                               self.headers(deployment),
                               dumps(self.embeddings_body(request, deployment)))

    def embeddings_response(self, status: int, headers: Mapping[str, str], body: bytes,
                            deployment: Deployment) -> Json:
        """OpenAI's ``list`` of ``embedding`` objects, ``model`` the deployment's,
        ``usage`` ``{prompt_tokens, total_tokens}``."""
        data = self._success(status, headers, body)
        if not isinstance(data.get("data"), list):
            raise ProviderError("bad_response", "the answer has no data", provider=self.name)
        raw_usage = data.get("usage") or {}
        prompt = int(raw_usage.get("prompt_tokens") or 0)
        return {"object": "list",
                "data": [{"object": "embedding", "index": item.get("index", n),
                          "embedding": item.get("embedding")}
                         for n, item in enumerate(data["data"])],
                "model": deployment.model,
                "usage": {"prompt_tokens": prompt,
                          "total_tokens": int(raw_usage.get("total_tokens") or prompt)}}

    def _success(self, status: int, headers: Mapping[str, str], body: bytes) -> Json:
        if not 200 <= status < 300:
            raise self.error(status, headers, body)
        data = read_json(body, self.name)
        if data.get("error") and not data.get("choices") and not data.get("data"):
            code = data["error"].get("code") if isinstance(data["error"], dict) else None
            raise classify(code if isinstance(code, int) and 400 <= code < 600 else 502,
                           headers, data, self.name)  # OpenRouter: errors in a 200
        return data


OPENAI = OpenAITranslator()
OPENAI_COMPATIBLE = OpenAITranslator("openai-compatible", "http://127.0.0.1:8000/v1",
                                     legacy_names=True)

"""Ollama's native API: ``POST /api/chat`` and ``POST /api/embed`` (``docs/api.md``,
``api/types.go`` of ollama/ollama), default base ``http://127.0.0.1:11434``, no key
(an ``api_key``, as ollama.com's cloud wants, goes as ``authorization: Bearer``).

Request (``ChatRequest``, ``Message``, ``Options``):

================================  =====================================================
canonical                         Ollama
================================  =====================================================
messages (text parts joined       ``messages[{role, content}]``; ``system`` and
by newlines)                      ``developer`` -> ``system``
``image_url`` ``data:`` URLs      the message's ``images`` (base64, no media type);
                                  other URLs are refused: Ollama fetches nothing
assistant ``tool_calls``          ``tool_calls[{id, function: {name, arguments}}]``
                                  (``arguments`` an object, parsed from the string)
``role: tool``                    ``{role: tool, content, tool_name, tool_call_id}``
                                  (``tool_name`` looked up from the call's id)
``tools``                         ``tools`` (same shape as OpenAI's)
``tool_choice``                   Ollama has none: ``none`` sends no tools; a named
                                  function sends only that tool; ``required`` cannot
                                  be enforced and is sent as ``auto``
``response_format``               ``format``: ``"json"`` (json_object) or the schema
``max_completion_tokens`` /       ``options.num_predict``
``max_tokens``
``temperature``, ``top_p``,       ``options`` of the same names
``seed``, ``presence_penalty``,
``frequency_penalty``, ``stop``
================================  =====================================================

``logprobs`` / ``top_logprobs`` are sent as they are; the answer's ``logprobs``
(``token``, ``logprob``, ``bytes``, ``top_logprobs``: OpenAI's shape already) become
``choices[0].logprobs.content``.  Refused: ``n`` > 1.  Dropped: ``user``,
``logit_bias``, ``parallel_tool_calls``.

Response (``ChatResponse``): ``message.content``; ``message.tool_calls`` with
``arguments`` as JSON strings and the id Ollama gave (or ``call_<random>``);
``done_reason`` ``length`` -> ``length``, ``stop`` (and ``load``/``unload``, the
answers to an empty chat) -> ``stop``, or ``tool_calls`` when the answer holds tool
calls (as Ollama's own OpenAI layer does, ``openai/openai.go``); usage
``prompt_eval_count`` / ``eval_count`` (Ollama reports no cache reads: cached 0).  The
stream (:class:`OllamaStreamDecoder`) is one such JSON object per line; the line with
``done: true`` is the end.  Errors are ``{"error": "..."}`` (``docs/api/errors.mdx``),
also as a line inside a stream.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from campusgate.ai.errors import ProviderError, retry_after_seconds
from campusgate.ai.providers.base import Deployment, StreamDecoder, UpstreamRequest
from campusgate.ai.providers.ollama_stream import (
    OllamaStreamDecoder,
    error_kind,
    finish_reason,
    logprobs,
    tool_call,
)
from campusgate.ai.types import ChatRequest, ChatResponse, Json, chat_response, usage

__all__ = ["OLLAMA", "OllamaTranslator", "chat_body"]

_OPTIONS = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")


def _refuse(message: str) -> ProviderError:
    return ProviderError("bad_request", message, provider="ollama")


class OllamaTranslator:
    name = "ollama"
    default_base_url = "http://127.0.0.1:11434"

    def chat_request(self, request: ChatRequest, deployment: Deployment
                     ) -> UpstreamRequest:
        body = chat_body(request, deployment.model)
        return self._post(deployment, "/api/chat", body, stream=body["stream"])

    def _post(self, deployment: Deployment, path: str, body: Json, *,
              stream: bool = False) -> UpstreamRequest:
        headers = {"content-type": "application/json"}
        if deployment.api_key:
            headers["authorization"] = f"Bearer {deployment.api_key}"
        headers.update(deployment.extra_headers)
        base = deployment.base_url or self.default_base_url
        return UpstreamRequest("POST", base + path, headers,
                               json.dumps(body, separators=(",", ":")).encode(),
                               stream=stream)

    def chat_response(self, status: int, headers: Mapping[str, str], body: bytes,
                      deployment: Deployment) -> ChatResponse:
        data = self._json(status, headers, body)
        message = _field(data, "message", dict, status)
        calls = [tool_call(call) for call in message.get("tool_calls") or []]
        out: Json = {"role": "assistant", "content": message.get("content") or None,
                     "refusal": None}
        if calls:
            out["tool_calls"] = calls
        if out["content"] is None and not calls:
            out["content"] = ""
        response = chat_response(
            id=f"chatcmpl-{uuid.uuid4().hex}", model=deployment.model, message=out,
            finish_reason=finish_reason(data.get("done_reason"), bool(calls)),
            usage=usage(int(data.get("prompt_eval_count") or 0),
                        int(data.get("eval_count") or 0)))
        if data.get("logprobs"):
            response["choices"][0]["logprobs"] = logprobs(data["logprobs"])
        return response

    def _json(self, status: int, headers: Mapping[str, str], body: bytes) -> Json:
        if not 200 <= status < 300:
            raise self.error(status, headers, body)
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ProviderError("bad_response", f"not JSON: {exc}", status=status,
                                provider="ollama") from exc
        if not isinstance(data, dict):
            raise ProviderError("bad_response", "not a JSON object", status=status,
                                provider="ollama")
        if data.get("error"):
            raise self.error(500, headers, body)
        return data

    def chat_stream(self, deployment: Deployment) -> StreamDecoder:
        return OllamaStreamDecoder(deployment.model, created=int(time.time()))

    def error(self, status: int, headers: Mapping[str, str], body: bytes
              ) -> ProviderError:
        try:
            data = json.loads(body)
            message = str(data["error"]) if isinstance(data, dict) else ""
        except (ValueError, KeyError):
            message = ""
        message = message or body.decode("utf-8", "replace").strip() or f"HTTP {status}"
        return ProviderError(error_kind(status, message), message, status=status,
                             provider="ollama", retry_after=retry_after_seconds(
                                 {k.lower(): v for k, v in headers.items()}))

    def embeddings_request(self, request: Json, deployment: Deployment
                           ) -> UpstreamRequest:
        given = request.get("input")
        texts = [given] if isinstance(given, str) else given
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise _refuse("Ollama embeds text: input must be a string or strings")
        body: Json = {"model": deployment.model, "input": texts}
        if request.get("dimensions"):
            body["dimensions"] = request["dimensions"]
        return self._post(deployment, "/api/embed", body)

    def embeddings_response(self, status: int, headers: Mapping[str, str], body: bytes,
                            deployment: Deployment) -> Json:
        data = self._json(status, headers, body)
        vectors = _field(data, "embeddings", list, status)
        tokens = int(data.get("prompt_eval_count") or 0)
        return {"object": "list", "model": deployment.model,
                "data": [{"object": "embedding", "index": index,
                          "embedding": vector}
                         for index, vector in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _field(data: Json, name: str, kind: type, status: int) -> Any:
    """``data[name]``, which must be a ``kind``."""
    value = data.get(name)
    if not isinstance(value, kind):
        raise ProviderError("bad_response", f"an Ollama answer without {name}",
                            status=status, provider="ollama")
    return value


def chat_body(request: ChatRequest, model: str) -> Json:
    """The JSON body of ``POST /api/chat``."""
    if (request.get("n") or 1) > 1:
        raise _refuse("Ollama returns one choice: n must be 1")
    names: dict[str, str] = {}
    messages = [_message(message, names) for message in request.get("messages") or []]
    body: Json = {"model": model, "messages": messages,
                  "stream": bool(request.get("stream"))}
    tools = _tools(request)
    if tools:
        body["tools"] = tools
    kind = (request.get("response_format") or {}).get("type")
    if kind == "json_object":
        body["format"] = "json"
    elif kind == "json_schema":
        schema = request["response_format"].get("json_schema") or {}
        body["format"] = schema.get("schema") or {"type": "object"}
    if request.get("logprobs"):
        body["logprobs"] = True
        if request.get("top_logprobs"):
            body["top_logprobs"] = request["top_logprobs"]
    options = {name: request[name] for name in _OPTIONS if request.get(name) is not None}
    max_tokens = request.get("max_completion_tokens") or request.get("max_tokens")
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    stop = request.get("stop")
    if stop:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if options:
        body["options"] = options
    return body


def _message(message: Json, names: dict[str, str]) -> Json:
    role = message.get("role")
    content = message.get("content")
    if role == "developer":
        role = "system"
    if role not in ("system", "user", "assistant", "tool"):
        raise _refuse(f"message role {role!r} is not supported")
    texts: list[str] = []
    images: list[str] = []
    for part in [] if content is None else (
            [{"type": "text", "text": content}] if isinstance(content, str) else content):
        if part.get("type") in ("text", "refusal"):
            texts.append(part.get("text") or part.get("refusal") or "")
        elif part.get("type") == "image_url" and role == "user":
            images.append(_image(part.get("image_url") or {}))
        else:
            raise _refuse(f"content part {part.get('type')!r} is not supported by Ollama")
    out: Json = {"role": role, "content": "\n".join(texts)}
    if images:
        out["images"] = images
    if role == "assistant" and message.get("tool_calls"):
        out["tool_calls"] = [_call(call, names) for call in message["tool_calls"]]
    if role == "tool":
        call_id = message.get("tool_call_id")
        if call_id in names:
            out["tool_name"] = names[call_id]
        if call_id:
            out["tool_call_id"] = call_id
    return out


def _image(image: Any) -> str:
    url = image.get("url", "") if isinstance(image, dict) else str(image)
    head, comma, data = url.partition(",")
    if not url.startswith("data:image/") or not comma or not head.endswith(";base64"):
        raise _refuse("Ollama reads images only from base64 data:image/... URLs")
    return "".join(data.split())


def _call(call: Json, names: dict[str, str]) -> Json:
    function = call.get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except ValueError as exc:
        raise _refuse(f"tool call {call.get('id')!r} has arguments that are not JSON: "
                      f"{exc}") from exc
    if call.get("id"):
        names[call["id"]] = function.get("name", "")
    out: Json = {"function": {"name": function.get("name"), "arguments": arguments}}
    if call.get("id"):
        out["id"] = call["id"]
    return out


def _tools(request: ChatRequest) -> list[Json]:
    tools = request.get("tools") or []
    choice = request.get("tool_choice")
    if choice == "none":
        return []
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        tools = [tool for tool in tools
                 if (tool.get("function") or {}).get("name") == wanted]
    for tool in tools:
        if tool.get("type", "function") != "function":
            raise _refuse(f"tool type {tool.get('type')!r} is not supported by Ollama")
    return [{"type": "function", "function": tool["function"]} for tool in tools]


OLLAMA = OllamaTranslator()

"""Mistral (type ``mistral``, ``https://api.mistral.ai/v1``): Chat Completions in
Mistral's dialect.

Mistral's OpenAPI (``ChatCompletionRequest``, ``EmbeddingRequest``, ``ToolChoiceEnum``,
``ChatCompletionChoice``) and its Python SDK's models.  The request keeps only the
fields Mistral knows (it answers 422 to any other), renamed where Mistral names them
otherwise:

===================================  ===========================================
canonical                            Mistral
===================================  ===========================================
``seed``                             ``random_seed``
``max_completion_tokens``            ``max_tokens``
``tool_choice: "required"``          ``"any"`` (named functions are the same)
role ``developer``                   ``system``
tool call ids (assistant, ``tool``)  ``[a-zA-Z0-9]{9}`` ("Tool call id was ... but
                                     must be a-z, A-Z, 0-9, with a length of 9"):
                                     others are hashed to 9 characters, the same way
                                     in the call and in its result
``dimensions`` (embeddings)          ``output_dimension``
===================================  ===========================================

Dropped, as Mistral has no such thing and a client would not notice: ``user``,
``store``, ``metadata``, ``service_tier``, ``stream_options`` (Mistral puts the usage
on its last chunk anyway), ``logit_bias``, ``verbosity``.  ``logprobs`` asked for is
``bad_request``: the client would notice.  Finish reasons ``model_length`` (-> length)
and ``error`` (-> a ``server`` error) are mapped by
:mod:`~campusgate.ai.providers.openai_family`, errors too (Mistral's error object is
top-level: ``{"object": "error", "message", "type", "code"}``).
"""

from __future__ import annotations

import hashlib
import re

from campusgate.ai.errors import ProviderError
from campusgate.ai.providers.base import Deployment
from campusgate.ai.providers.openai import OpenAITranslator
from campusgate.ai.types import ChatRequest, Json

__all__ = ["MISTRAL", "MistralTranslator", "mistral_tool_call_id"]

_KEEP = frozenset({
    "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop",
    "random_seed", "response_format", "tools", "tool_choice", "presence_penalty",
    "frequency_penalty", "n", "prediction", "parallel_tool_calls", "reasoning_effort",
    "prompt_mode", "safe_prompt", "prompt_cache_key", "guardrails"})
_ID = re.compile(r"[a-zA-Z0-9]{9}")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def mistral_tool_call_id(call_id: str) -> str:
    """``call_id`` as Mistral accepts it: itself when it is 9 letters and digits, else
    9 base-62 digits of its SHA-256 (stable: a call and its result still match)."""
    if _ID.fullmatch(call_id):
        return call_id
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    digits = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return "".join(digits)


class MistralTranslator(OpenAITranslator):
    name = "mistral"
    default_base_url = "https://api.mistral.ai/v1"
    stream_usage = False
    legacy_names = True

    def chat_body(self, request: ChatRequest, deployment: Deployment) -> Json:
        if request.get("logprobs") or request.get("top_logprobs"):
            raise ProviderError("bad_request", "Mistral returns no logprobs",
                                provider=self.name)
        body = super().chat_body(request, deployment)
        if "seed" in body:
            body.setdefault("random_seed", body.pop("seed"))
        if body.get("tool_choice") == "required":
            body["tool_choice"] = "any"
        body["messages"] = [_message(m) for m in body.get("messages") or []]
        return {k: v for k, v in body.items() if k in _KEEP}

    def embeddings_body(self, request: Json, deployment: Deployment) -> Json:
        body: Json = {"model": deployment.model, "input": request.get("input")}
        if request.get("dimensions") is not None:
            body["output_dimension"] = request["dimensions"]
        if request.get("encoding_format") is not None:
            body["encoding_format"] = request["encoding_format"]
        return body


def _message(message: Json) -> Json:
    out = dict(message)
    if out.get("tool_call_id"):
        out["tool_call_id"] = mistral_tool_call_id(str(out["tool_call_id"]))
    if out.get("tool_calls"):
        out["tool_calls"] = [{**call, "id": mistral_tool_call_id(str(call.get("id") or ""))}
                             for call in out["tool_calls"]]
    return out


MISTRAL = MistralTranslator()

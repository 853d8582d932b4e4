"""What OpenAI, Azure OpenAI, Mistral and the OpenAI-compatible servers share: the
Chat Completions wire format, and how their answers are made canonical.

The canonical form *is* OpenAI's Chat Completions JSON, so the request is nearly a
forward; the work is on the way back, because the "compatible" servers differ in the
details (OpenAI API reference, "Chat Completions" -> "The chat completion object" and
"The chat completion chunk object"; Mistral's OpenAPI ``ChatCompletionChoice``;
DeepSeek's "Create Chat Completion" usage; xAI's "Chat completions" usage):

- ``finish_reason`` is mapped through :data:`FINISH` (OpenAI's own five, Mistral's
  ``model_length``, Together's ``eos``, and the Anthropic-style reasons some proxies
  pass through); an unknown reason becomes ``stop``.  A reason that means the
  generation *failed* (:data:`FAILED`: Mistral's ``error``, vLLM's ``abort``, DeepSeek's
  ``insufficient_system_resource``) raises :class:`ProviderError` instead: the answer is
  not whole, and the router may retry elsewhere.  ``stop`` with tool calls becomes
  ``tool_calls`` (OpenAI itself answers ``stop`` when ``tool_choice`` names a function;
  clients loop on ``tool_calls``).  The deprecated ``function_call`` is ``tool_calls``.
- usage (:func:`canonical_usage`): ``prompt_tokens_details.cached_tokens``, or
  DeepSeek's ``prompt_cache_hit_tokens``; reasoning tokens that a server left out of
  ``completion_tokens`` (xAI: ``total = prompt + completion + reasoning``) are added in.
- errors (:func:`classify`): OpenAI's ``{"error": {message, type, param, code}}``,
  Mistral's top-level ``{"object": "error", "message", "type", "code"}``, FastAPI's
  ``{"detail": ...}`` (vLLM), or any text; the status decides the kind, except that a
  context-length error (code ``context_length_exceeded`` or the message) is
  ``context_length`` (with OpenAI's code ``context_length_exceeded``, whatever the
  provider's, since clients test that code) and a content-filter error (code ``content_filter`` /
  ``content_policy_violation``) is ``content_filter``.  429 ``insufficient_quota`` is
  ``rate_limited`` too: another key or deployment may still have quota.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from campusgate.ai.errors import ErrorKind, ProviderError, retry_after_seconds
from campusgate.ai.providers.json_wire import read_json
from campusgate.ai.types import ChatResponse, Json, usage

__all__ = ["FAILED", "FINISH", "canonical_message", "canonical_response", "canonical_usage",
           "classify", "finish_reason", "parse_error", "read_json"]

#: A provider's finish reason -> OpenAI's.
FINISH: dict[str, str] = {
    "stop": "stop", "eos": "stop", "end_turn": "stop", "stop_sequence": "stop",
    "length": "length", "model_length": "length", "max_tokens": "length",
    "tool_calls": "tool_calls", "function_call": "tool_calls", "tool_use": "tool_calls",
    "model_context_window_exceeded": "length",
    "content_filter": "content_filter", "safety": "content_filter", "refusal": "content_filter",
}
#: Finish reasons that say the generation failed -> the error kind raised.
FAILED: dict[str, ErrorKind] = {
    "error": "server", "abort": "server", "insufficient_system_resource": "overloaded",
}
#: What OpenAI's own answers hold (:func:`canonical_response` reuses such an answer).
_ANSWER_KEYS = frozenset({"id", "object", "created", "model", "choices", "usage",
                          "system_fingerprint", "service_tier"})
_CHOICE_KEYS = frozenset({"index", "message", "finish_reason", "logprobs"})
_TEXT_MESSAGE_KEYS = frozenset({"role", "content", "refusal", "annotations", "audio"})
_CONTEXT = re.compile(r"context[ _]length|context window|maximum context|too large for model"
                      r"|prompt is too long|reduce the length of the messages", re.I)
_FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})
_BY_STATUS: dict[int, ErrorKind] = {
    400: "bad_request", 401: "auth", 403: "permission", 404: "not_found", 408: "timeout",
    413: "context_length", 422: "bad_request", 429: "rate_limited", 503: "overloaded",
    504: "timeout", 529: "overloaded",
}
#: ``error.type`` of an error reported inside a stream (no status) -> kind.
_BY_TYPE: dict[str, ErrorKind] = {
    "invalid_request_error": "bad_request", "authentication_error": "auth",
    "permission_error": "permission", "not_found_error": "not_found",
    "rate_limit_error": "rate_limited", "rate_limit_exceeded": "rate_limited",
    "overloaded_error": "overloaded", "server_error": "server",
}


def finish_reason(raw: Any, has_tool_calls: bool, provider: str) -> str:
    """OpenAI's finish reason for a provider's ``raw`` one (None: the model stopped
    without saying why, as some servers do)."""
    if raw in FAILED:
        raise ProviderError(FAILED[raw], f"the generation stopped with {raw!r}",
                            provider=provider, code=str(raw))
    mapped = FINISH.get(raw, "stop") if isinstance(raw, str) else "stop"
    return "tool_calls" if has_tool_calls and mapped == "stop" else mapped


_TEXT_OR_NONE = (str, type(None))
_USAGE_KEYS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens",
                         "prompt_tokens_details", "completion_tokens_details"})
_PROMPT_DETAIL_KEYS = frozenset({"cached_tokens", "audio_tokens"})
_COMPLETION_DETAIL_KEYS = frozenset({"reasoning_tokens", "audio_tokens",
                                     "accepted_prediction_tokens",
                                     "rejected_prediction_tokens"})


def _already_canonical(raw: Mapping[str, Any]) -> bool:
    """Whether OpenAI's own usage object is what :func:`canonical_usage` would make of
    it (whole numbers, the total their sum, ``cached_tokens`` given, no other keys):
    then it is kept as it is, as OpenAI sends it on every call."""
    if not raw.keys() <= _USAGE_KEYS:
        return False
    prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
    if (type(prompt) is not int or type(completion) is not int
            or raw.get("total_tokens") != prompt + completion):
        return False
    details = raw.get("prompt_tokens_details")
    if (type(details) is not dict or type(details.get("cached_tokens")) is not int
            or not details.keys() <= _PROMPT_DETAIL_KEYS):
        return False
    for value in details.values():
        if type(value) is not int:
            return False
    out = raw.get("completion_tokens_details")
    if out is None:
        return "completion_tokens_details" not in raw
    if type(out) is not dict or not out or not out.keys() <= _COMPLETION_DETAIL_KEYS:
        return False
    for value in out.values():  # noqa: SIM110 -- all(<generator>) is a frame more per call
        if type(value) is not int:
            return False
    return True


def canonical_usage(raw: Mapping[str, Any]) -> Json:
    """The canonical usage of an OpenAI-style usage object (see the module doc)."""
    if type(raw) is dict and _already_canonical(raw):
        return raw
    prompt = int(raw.get("prompt_tokens") or 0)
    completion = int(raw.get("completion_tokens") or 0)
    details = raw.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or raw.get("prompt_cache_hit_tokens") or 0)
    out_details = raw.get("completion_tokens_details") or {}
    reasoning = out_details.get("reasoning_tokens")
    if reasoning and raw.get("total_tokens") == prompt + completion + reasoning:
        completion += int(reasoning)  # xAI counts reasoning apart from completion
    out = usage(prompt, completion, cached,
                reasoning=None if reasoning is None else int(reasoning))
    for source, target, names in (
            (details, out["prompt_tokens_details"], ("audio_tokens",)),
            (out_details, out.setdefault("completion_tokens_details", {}),
             ("audio_tokens", "accepted_prediction_tokens", "rejected_prediction_tokens"))):
        target.update({n: source[n] for n in names if isinstance(source.get(n), int)})
    if not out["completion_tokens_details"]:
        del out["completion_tokens_details"]
    return out


def text_of(content: Any) -> str | None:
    """A message's content as text: a string, or the text parts of a list (Mistral's
    reasoning models answer a list of ``text`` / ``thinking`` chunks)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content
                       if isinstance(part, dict) and part.get("type") == "text")
    return str(content)


def arguments_text(arguments: Any) -> str:
    """Tool-call arguments as the JSON text OpenAI sends (Mistral may send an object)."""
    if arguments is None:
        return ""
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def canonical_message(message: Mapping[str, Any], call_prefix: str) -> Json:
    """An answer's ``message``: role assistant, text content, tool calls with an id and
    ``type: function`` each, ``reasoning_content`` (DeepSeek, vLLM; OpenRouter's
    ``reasoning``) kept, OpenAI's ``refusal`` / ``annotations`` / ``audio`` kept."""
    out: Json = {"role": "assistant", "content": text_of(message.get("content"))}
    calls = []
    for n, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        calls.append({"id": call.get("id") or f"{call_prefix}_{n}", "type": "function",
                      "function": {"name": function.get("name") or "",
                                   "arguments": arguments_text(function.get("arguments"))}})
    if calls:
        out["tool_calls"] = calls
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        out["reasoning_content"] = reasoning
    for key in ("refusal", "annotations", "audio", "function_call"):
        if key in message:
            out[key] = message[key]
    return out


def canonical_response(body: Mapping[str, Any], model: str, provider: str) -> ChatResponse:
    """A 2xx ``chat.completion`` body made canonical (``model`` = the deployment's).

    A ``dict`` already in OpenAI's own shape (:func:`_canonical_in_place`) is changed
    in place and returned, its messages kept as they are: pass one just parsed."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ProviderError("bad_response", "the answer has no choices", provider=provider)
    if isinstance(body, dict) and body.keys() <= _ANSWER_KEYS:
        reused = _canonical_in_place(body, choices, model, provider)
        if reused is not None:
            return reused
    ident = str(body.get("id") or f"chatcmpl-{uuid.uuid4().hex}")
    out_choices = []
    for n, choice in enumerate(choices):
        message = canonical_message(choice.get("message") or {}, f"call_{ident[-12:]}_{n}")
        out_choices.append({
            "index": choice.get("index", n), "message": message,
            "finish_reason": finish_reason(choice.get("finish_reason"),
                                           "tool_calls" in message, provider),
            "logprobs": choice.get("logprobs")})
    out: ChatResponse = {"id": ident, "object": "chat.completion",
                         "created": int(body.get("created") or time.time()), "model": model,
                         "choices": out_choices}
    if isinstance(body.get("usage"), dict):
        out["usage"] = canonical_usage(body["usage"])
    for key in ("system_fingerprint", "service_tier"):
        if body.get(key) is not None:
            out[key] = body[key]
    return out


def _canonical_in_place(body: Json, choices: list[Any], model: str,
                        provider: str) -> ChatResponse | None:
    """``body`` made canonical by changing only what differs, when it has nothing a
    canonical answer would drop or rewrite (the keys below; an id, a creation time;
    messages of text only); else None (and ``body`` unchanged)."""
    ident, created = body.get("id"), body.get("created")
    if not (isinstance(ident, str) and ident and type(created) is int and created):
        return None
    for choice in choices:
        if not (isinstance(choice, dict) and choice.keys() <= _CHOICE_KEYS):
            return None
        message = choice.get("message")
        if not (isinstance(message, dict) and message.keys() <= _TEXT_MESSAGE_KEYS
                and message.get("role") == "assistant"
                and isinstance(message.get("content"), _TEXT_OR_NONE)):
            return None
    for n, choice in enumerate(choices):
        choice["message"].setdefault("content", None)
        choice.setdefault("index", n)
        choice["finish_reason"] = finish_reason(choice.get("finish_reason"), False, provider)
        choice.setdefault("logprobs", None)
    body["object"] = "chat.completion"
    body["model"] = model
    if isinstance(body.get("usage"), dict):
        body["usage"] = canonical_usage(body["usage"])
    else:
        body.pop("usage", None)
    for key in ("system_fingerprint", "service_tier"):
        if key in body and body[key] is None:
            del body[key]
    return body


def parse_error(body: bytes | Mapping[str, Any]) -> tuple[str, Json]:
    """The message and the error object (``{}`` when none) of an error body in any of
    the shapes of the module doc."""
    if isinstance(body, Mapping):
        data: Any = body
    else:
        text = body.decode("utf-8", "replace").strip()
        try:
            data = json.loads(text)
        except ValueError:
            return text[:2000] or "(no body)", {}
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if not isinstance(data, dict):
        return str(data)[:2000], {}
    error = data.get("error", data)
    if isinstance(error, str):
        return error, {}
    if not isinstance(error, dict):
        return json.dumps(data)[:2000], {}
    message = error.get("message", error.get("detail"))
    if not isinstance(message, str):
        message = json.dumps(message if message is not None else data)[:2000]
    return message, error


def classify(status: int, headers: Mapping[str, str] | None, body: bytes | Mapping[str, Any],
             provider: str) -> ProviderError:
    """A provider's error answer (``status`` 0: reported inside a stream)."""
    message, error = parse_error(body)
    code = error.get("code")
    code_text = None if code is None else str(code)
    etype = error.get("type")
    kind: ErrorKind
    if code_text in _FILTER_CODES:
        kind = "content_filter"
    elif code_text == "context_length_exceeded" or (
            status in (0, 400, 413, 422) and _CONTEXT.search(message)):
        kind = "context_length"
    elif status == 0:
        kind = _BY_TYPE.get(str(etype), "server")
    else:
        kind = _BY_STATUS.get(status, "server" if status >= 500 else "bad_request")
    if kind == "context_length":  # the code OpenAI's clients look for
        code_text = "context_length_exceeded"
    return ProviderError(kind, message, status=status, provider=provider,
                         retry_after=retry_after_seconds(dict(headers or {})),
                         code=code_text or (etype if isinstance(etype, str) else None))

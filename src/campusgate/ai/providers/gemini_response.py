"""Gemini's ``GenerateContentResponse`` and error answers in canonical terms.

Gemini API reference, "Generating content > GenerateContentResponse": a response has
``candidates[]`` (``content.parts[]``, ``finishReason``), ``promptFeedback``
(``blockReason`` when the prompt was refused: then there are no candidates),
``usageMetadata`` and ``responseId``.

Finish reasons (``Candidate.FinishReason``, every documented value):

=================================================  =================================
Gemini                                             OpenAI
=================================================  =================================
``STOP``                                           ``stop``; ``tool_calls`` when the
                                                   candidate has a ``functionCall``
``MAX_TOKENS``                                     ``length``
``SAFETY``, ``RECITATION``, ``LANGUAGE``,          ``content_filter`` (the candidate
``BLOCKLIST``, ``PROHIBITED_CONTENT``, ``SPII``,   was stopped by a filter)
``IMAGE_SAFETY``, ``IMAGE_PROHIBITED_CONTENT``,
``IMAGE_RECITATION``
``MALFORMED_FUNCTION_CALL``,                       ``stop`` (the model ended without a
``UNEXPECTED_TOOL_CALL``, ``TOO_MANY_TOOL_CALLS``, usable call or content; OpenAI has
``MISSING_THOUGHT_SIGNATURE``,                     no closer reason and ``tool_calls``
``MALFORMED_RESPONSE``, ``IMAGE_OTHER``,           would promise calls that are not
``NO_IMAGE``, ``OTHER``,                           there)
``FINISH_REASON_UNSPECIFIED``, any new value
``promptFeedback.blockReason`` (no candidates)     ``content_filter``, empty content
=================================================  =================================

Usage (``UsageMetadata``): ``promptTokenCount`` already includes the cached content
("the total effective prompt size"), ``cachedContentTokenCount`` is the cached part
of it; ``toolUsePromptTokenCount`` (the results of Gemini's own tools, code
execution and search, fed back in) is input too and is added to ``prompt_tokens``;
``candidatesTokenCount`` excludes thinking, so ``thoughtsTokenCount`` is added to
``completion_tokens`` (billed as output) and reported as ``reasoning_tokens`` --
as OpenAI counts its reasoning tokens.  ``total = prompt + completion`` then equals
Gemini's ``totalTokenCount``.

Errors (Google's ``{"error": {code, message, status, details}}``, "API errors" /
google.rpc.Code): ``INVALID_ARGUMENT`` -> ``bad_request`` (``context_length`` when the
message speaks of the token limit; ``auth`` for the ``API_KEY_INVALID`` reason, which
Google sends with 400), ``FAILED_PRECONDITION``/``OUT_OF_RANGE`` -> ``bad_request``,
``UNAUTHENTICATED`` -> ``auth``, ``PERMISSION_DENIED`` -> ``permission``,
``NOT_FOUND`` -> ``not_found``, ``RESOURCE_EXHAUSTED`` -> ``rate_limited`` (retry
after the ``retry-after`` header or the ``RetryInfo.retryDelay`` detail),
``UNAVAILABLE`` -> ``overloaded``, ``DEADLINE_EXCEEDED`` -> ``timeout``, ``INTERNAL``
and the rest -> ``server``.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from campusgate.ai.errors import ErrorKind, ProviderError, retry_after_seconds
from campusgate.ai.providers.gemini_request import call_id
from campusgate.ai.types import Json, usage

__all__ = ["error_from", "finish_reason", "gemini_usage", "message_parts"]

_FILTERED: Final = frozenset({
    "SAFETY", "RECITATION", "LANGUAGE", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
    "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"})

_KINDS: Final[dict[str, ErrorKind]] = {
    "INVALID_ARGUMENT": "bad_request", "FAILED_PRECONDITION": "bad_request",
    "OUT_OF_RANGE": "bad_request", "UNAUTHENTICATED": "auth",
    "PERMISSION_DENIED": "permission", "NOT_FOUND": "not_found",
    "RESOURCE_EXHAUSTED": "rate_limited", "UNAVAILABLE": "overloaded",
    "DEADLINE_EXCEEDED": "timeout", "INTERNAL": "server", "UNKNOWN": "server",
    "CANCELLED": "server", "ABORTED": "server", "DATA_LOSS": "server",
    "UNIMPLEMENTED": "bad_request"}
_BY_STATUS: Final[dict[int, ErrorKind]] = {
    400: "bad_request", 401: "auth", 403: "permission", 404: "not_found",
    413: "context_length", 429: "rate_limited", 503: "overloaded", 504: "timeout"}
#: How Gemini words an input over the model's context window.
_TOO_LONG: Final = re.compile(r"token count|maximum number of tokens|exceeds the "
                              r"(?:maximum|context)|too long|context window", re.I)


def finish_reason(reason: str | None, called: bool) -> str:
    """The OpenAI finish reason of a candidate's ``finishReason``."""
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if called and reason == "STOP" else "stop"


def gemini_usage(meta: Json | None) -> Json | None:
    """``usageMetadata`` as OpenAI's usage (see the module docstring)."""
    if not meta:
        return None
    thoughts = meta.get("thoughtsTokenCount")
    prompt = meta.get("promptTokenCount", 0) + meta.get("toolUsePromptTokenCount", 0)
    completion = meta.get("candidatesTokenCount", 0) + (thoughts or 0)
    return usage(prompt, completion, meta.get("cachedContentTokenCount", 0),
                 reasoning=thoughts)


def message_parts(parts: list[Json], first_call: int = 0
                  ) -> tuple[str, list[Json]]:
    """The text (thoughts left out) and the OpenAI tool calls of ``parts``; calls are
    numbered from ``first_call``."""
    text = []
    calls: list[Json] = []
    for part in parts:
        if part.get("thought"):
            continue
        if "text" in part:
            text.append(part["text"])
        elif "functionCall" in part:
            calls.append({"id": call_id(first_call + len(calls), part), "type": "function",
                          "function": {"name": part["functionCall"]["name"],
                                       "arguments": json.dumps(
                                           part["functionCall"].get("args") or {},
                                           ensure_ascii=False)}})
    return "".join(text), calls


def error_from(status: int, headers: Mapping[str, str] | None, body: bytes | Any
               ) -> ProviderError:
    """A Gemini error answer (or an ``error`` object inside a stream) as data."""
    payload: Any = body
    if isinstance(body, bytes | bytearray):
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
    if isinstance(payload, list) and payload:  # the JSON-array form of streams
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        text = body.decode("utf-8", "replace")[:500] if isinstance(body, bytes) else ""
        return ProviderError(_BY_STATUS.get(status, "server" if status >= 500 or not status
                                            else "bad_request"),
                             text or f"HTTP {status}", status, "gemini",
                             retry_after_seconds(dict(headers or {})))
    message = str(error.get("message") or f"HTTP {status}")
    code = error.get("status")
    status = int(error.get("code") or status)
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    kind = _KINDS.get(str(code)) or _BY_STATUS.get(status) or (
        "server" if status >= 500 else "bad_request")
    if kind == "bad_request" and _TOO_LONG.search(message):
        kind = "context_length"
    if any(d.get("reason") == "API_KEY_INVALID" for d in details):
        kind = "auth"
    retry = retry_after_seconds(dict(headers or {}))
    for detail in details:
        delay = str(detail.get("retryDelay") or "")
        if retry is None and delay.endswith("s"):
            with contextlib.suppress(ValueError):
                retry = float(delay[:-1])
    return ProviderError(kind, message, status, "gemini", retry, code)

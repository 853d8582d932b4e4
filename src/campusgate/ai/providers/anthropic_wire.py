"""Anthropic's response-side vocabulary, shared by the provider translator
(:mod:`.anthropic`), its stream decoder (:mod:`.anthropic_stream`) and the
client-facing Messages API (:mod:`campusgate.ai.api.anthropic_messages`): stop
reasons, usage and error types, both ways.

Stop reasons (Messages API reference, ``Message.stop_reason``; the SDK's
``types/stop_reason.py`` lists every value) -> OpenAI's four:

==================================  ==================  =================================
``end_turn``                        ``stop``            the model's natural end
``stop_sequence``                   ``stop``            the sequence is also reported as
                                                        the choice's ``stop_reason`` (vLLM's
                                                        extension) so it can be told back
``max_tokens``                      ``length``
``model_context_window_exceeded``   ``length``          generation hit the context window
``tool_use``                        ``tool_calls``
``pause_turn``                      ``stop``            a server-tool turn paused; the
                                                        answer so far is whole text
``refusal``                         ``content_filter``  streaming classifiers intervened
anything newer / null               ``stop``            forward-compatible
==================================  ==================  =================================

Usage (``Message.usage``: "Total input tokens in a request is the summation of
``input_tokens``, ``cache_creation_input_tokens``, and ``cache_read_input_tokens``"):
``prompt_tokens`` is that sum, ``cached_tokens`` the cache reads, and the cache
writes -- billed at their own price -- ride along as
``prompt_tokens_details.cache_write_tokens`` (an extension, present only when
non-zero) so accounting and the way back to Anthropic's usage stay exact.
``output_tokens_details.thinking_tokens`` becomes ``reasoning_tokens``.

Errors (API reference, "Errors": ``{"type": "error", "error": {"type", "message"}}``):
the error ``type`` decides the kind, the status when the type is unknown.
``invalid_request_error`` is refined by its message: the prompt not fitting is
``context_length``; "credit balance is too low" (sent as a 400) is ``auth``, like
``billing_error`` (402): the key cannot be used until someone pays, so the router
should take it out.  ``request_too_large`` (413) is the 32 MB byte limit enforced
before the API, not the context window: ``bad_request``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from campusgate.ai.errors import ErrorKind, ProviderError, retry_after_seconds
from campusgate.ai.types import Json, usage

__all__ = ["ERROR_STATUS", "PROVIDER", "canonical_usage", "error_from_body",
           "error_kind", "finish_reason", "messages_usage", "stop_reason",
           "stream_error"]

PROVIDER: Final = "anthropic"

FINISH_REASON: Final[Mapping[str, str]] = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
    "max_tokens": "length", "model_context_window_exceeded": "length",
    "tool_use": "tool_calls", "refusal": "content_filter",
}
STOP_REASON: Final[Mapping[str, str]] = {
    "stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
    "content_filter": "refusal",
}
#: Anthropic's error type -> our kind.
ERROR_KIND: Final[Mapping[str, ErrorKind]] = {
    "invalid_request_error": "bad_request", "request_too_large": "bad_request",
    "authentication_error": "auth", "billing_error": "auth",
    "permission_error": "permission", "not_found_error": "not_found",
    "rate_limit_error": "rate_limited", "overloaded_error": "overloaded",
    "api_error": "server", "timeout_error": "timeout",
}
#: The status Anthropic answers with per error type (for errors inside a stream).
ERROR_STATUS: Final[Mapping[str, int]] = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
    "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
    "rate_limit_error": 429, "api_error": 500, "timeout_error": 504,
    "overloaded_error": 529,
}
#: Phrases of Anthropic's invalid_request_error when the prompt does not fit
#: ("prompt is too long: 208310 tokens > 200000 maximum", "input length and
#: `max_tokens` exceed context limit: ...").
_CONTEXT_PHRASES: Final = ("prompt is too long", "exceed context limit",
                           "context window", "too many total text bytes")


def finish_reason(stop: str | None) -> str:
    """OpenAI's finish reason for Anthropic's ``stop_reason``."""
    return FINISH_REASON.get(stop or "", "stop")


def stop_reason(finish: str | None, stop_sequence: str | None = None) -> str:
    """Anthropic's ``stop_reason`` for OpenAI's finish reason (``stop_sequence`` when
    the stop sequence that ended the text is known)."""
    if finish == "stop" and stop_sequence is not None:
        return "stop_sequence"
    return STOP_REASON.get(finish or "", "end_turn")


def _count(block: Mapping[str, Any], name: str) -> int:
    value = block.get(name)
    return value if isinstance(value, int) else 0


def canonical_usage(raw: Mapping[str, Any]) -> Json:
    """OpenAI's usage object for Anthropic's ``usage``."""
    read = _count(raw, "cache_read_input_tokens")
    write = _count(raw, "cache_creation_input_tokens")
    details = raw.get("output_tokens_details")
    thinking = details.get("thinking_tokens") if isinstance(details, Mapping) else None
    return usage(_count(raw, "input_tokens") + read + write, _count(raw, "output_tokens"),
                 read, reasoning=thinking if isinstance(thinking, int) else None,
                 cache_write=write)


def messages_usage(canonical: Mapping[str, Any] | None) -> Json:
    """Anthropic's ``usage`` for OpenAI's usage object (the inverse of
    :func:`canonical_usage`): ``input_tokens`` are the uncached ones."""
    canonical = canonical or {}
    details = canonical.get("prompt_tokens_details") or {}
    read = _count(details, "cached_tokens")
    write = _count(details, "cache_write_tokens")
    out: Json = {"input_tokens": max(_count(canonical, "prompt_tokens") - read - write, 0),
                 "cache_creation_input_tokens": write, "cache_read_input_tokens": read,
                 "output_tokens": _count(canonical, "completion_tokens")}
    reasoning = (canonical.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if isinstance(reasoning, int):
        out["output_tokens_details"] = {"thinking_tokens": reasoning}
    return out


def error_kind(error_type: str | None, status: int, message: str) -> ErrorKind:
    """The kind of an Anthropic error, by its type first and its status second."""
    kind = ERROR_KIND.get(error_type or "")
    if kind is None:
        kind = ("rate_limited" if status == 429 else "overloaded" if status in (503, 529)
                else "timeout" if status == 504 else "auth" if status in (401, 402)
                else "permission" if status == 403 else "not_found" if status == 404
                else "server" if status >= 500 else "bad_request")
    lowered = message.lower()
    if kind == "bad_request" and "credit balance" in lowered:
        return "auth"  # 400 "Your credit balance is too low": the key is unusable
    if kind == "bad_request" and status != 413 and any(
            phrase in lowered for phrase in _CONTEXT_PHRASES):
        return "context_length"
    return kind


def error_from_body(status: int, headers: Mapping[str, str] | None,
                    body: bytes) -> ProviderError:
    """A :class:`ProviderError` for Anthropic's error answer (or anything else that
    came back with an error status: an HTML page from a proxy keeps its start)."""
    error_type: str | None = None
    message = body[:500].decode("utf-8", "replace").strip() or f"HTTP {status}"
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        error = parsed["error"]
        error_type = error.get("type") if isinstance(error.get("type"), str) else None
        if isinstance(error.get("message"), str):
            message = error["message"]
    return ProviderError(error_kind(error_type, status, message), message, status=status,
                         provider=PROVIDER, retry_after=retry_after_seconds(
                             dict(headers) if headers else None), code=error_type)


def stream_error(data: Mapping[str, Any]) -> ProviderError:
    """The ``event: error`` of a stream (``{"type": "error", "error": {...}}``)."""
    error = data.get("error")
    if not isinstance(error, Mapping):
        error = {}
    error_type = error.get("type") if isinstance(error.get("type"), str) else None
    message = str(error.get("message") or "an error inside the stream")
    status = ERROR_STATUS.get(error_type or "", 500)
    return ProviderError(error_kind(error_type, status, message), message, status=status,
                         provider=PROVIDER, code=error_type)

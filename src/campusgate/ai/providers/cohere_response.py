"""Cohere Chat API v2 answers in canonical terms: finish reasons, usage, errors.

Cohere API reference, "Chat" (response ``finish_reason``, ``usage``) and "Errors"
(status codes; the body is ``{"id"?, "message"}``).

Finish reasons (every documented value of ``ChatFinishReason``):

=================  ==================================================================
Cohere             OpenAI
=================  ==================================================================
``COMPLETE``       ``stop``; ``tool_calls`` when the message has tool calls
``STOP_SEQUENCE``  ``stop``
``MAX_TOKENS``     ``length``
``TOOL_CALL``      ``tool_calls``
``ERROR``          no reason: :class:`ProviderError` ``server`` (the generation failed;
                   a fallback may succeed), with Cohere's message
``TIMEOUT``        no reason: :class:`ProviderError` ``timeout``
(anything new)     ``stop``
=================  ==================================================================

Usage: Cohere reports ``usage.billed_units`` (what it charges) and ``usage.tokens``
(what the model read and wrote, including the prompt template Cohere wraps around
the messages).  We report ``billed_units`` -- the numbers on the bill and the ones
the price table is per -- and ``tokens`` only when there are no billed units.
``usage.cached_tokens``, when present, is the cached part of the input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from campusgate.ai.errors import ErrorKind, ProviderError, retry_after_seconds
from campusgate.ai.types import Json, usage

__all__ = ["cohere_usage", "error_from", "finish_reason"]

_BY_STATUS: Final[dict[int, ErrorKind]] = {
    400: "bad_request", 401: "auth", 402: "permission", 403: "permission",
    404: "not_found", 413: "context_length", 422: "bad_request", 429: "rate_limited",
    498: "auth", 501: "bad_request", 503: "overloaded", 504: "timeout"}
#: How Cohere words an input over the model's context window.
_TOO_LONG: Final = re.compile(r"too many tokens|context length|too long|exceeds? the "
                              r"(?:maximum|context)", re.I)


def finish_reason(reason: str | None, called: bool, message: str = "") -> str:
    """The OpenAI finish reason of Cohere's ``finish_reason``; raises for ``ERROR`` and
    ``TIMEOUT``."""
    if reason == "ERROR":
        raise ProviderError("server", message or "Cohere's generation failed",
                            provider="cohere", code="ERROR")
    if reason == "TIMEOUT":
        raise ProviderError("timeout", message or "Cohere's generation timed out",
                            provider="cohere", code="TIMEOUT")
    if reason == "MAX_TOKENS":
        return "length"
    if reason == "TOOL_CALL" or (called and reason == "COMPLETE"):
        return "tool_calls"
    return "stop"


def cohere_usage(raw: Json | None) -> Json | None:
    """Cohere's ``usage`` as OpenAI's (see the module docstring)."""
    if not raw:
        return None
    counts = raw.get("billed_units") or raw.get("tokens") or {}
    return usage(int(counts.get("input_tokens") or 0),
                 int(counts.get("output_tokens") or 0),
                 int(raw.get("cached_tokens") or 0))


def error_from(status: int, headers: Mapping[str, str] | None, body: bytes
               ) -> ProviderError:
    """A Cohere error answer as data, Cohere's message kept."""
    message = ""
    payload: Any = None
    try:
        payload = json.loads(body)
    except ValueError:
        message = body.decode("utf-8", "replace")[:500]
    if isinstance(payload, dict):
        message = str(payload.get("message") or payload.get("error") or "")
    kind = _BY_STATUS.get(status) or ("server" if status >= 500 or not status
                                      else "bad_request")
    if kind == "bad_request" and _TOO_LONG.search(message):
        kind = "context_length"
    return ProviderError(kind, message or f"HTTP {status}", status, "cohere",
                         retry_after_seconds(dict(headers or {})))

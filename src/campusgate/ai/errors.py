"""Errors of the AI gateway as data: what went wrong, whose fault, and how each client
API spells it.

A :class:`ProviderError` is what a translator makes of a provider's error answer (or
of an answer it cannot use): a :data:`kind` the router acts on (fall back on
``rate_limited``, ``overloaded``, ``server``, ``timeout``, ``context_length``; disable
a key on ``auth``; never retry ``bad_request``), the status to answer, the provider's
own message (kept: the client should see the upstream's reason), and a
``retry_after`` in seconds when the provider gave one.  It renders itself in OpenAI's
error shape (:meth:`openai_body`) or Anthropic's (:meth:`anthropic_body`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ErrorKind", "ProviderError", "retry_after_seconds"]

ErrorKind = Literal["bad_request", "auth", "permission", "not_found", "rate_limited",
                    "overloaded", "context_length", "content_filter", "server",
                    "timeout", "bad_response"]

#: OpenAI's ``error.type`` per kind.
_OPENAI_TYPE: dict[str, str] = {
    "bad_request": "invalid_request_error", "context_length": "invalid_request_error",
    "content_filter": "invalid_request_error", "auth": "authentication_error",
    "permission": "permission_error", "not_found": "not_found_error",
    "rate_limited": "rate_limit_error", "overloaded": "server_error",
    "server": "server_error", "timeout": "server_error", "bad_response": "server_error",
}
#: Anthropic's ``error.type`` per kind.
_ANTHROPIC_TYPE: dict[str, str] = {
    "bad_request": "invalid_request_error", "context_length": "invalid_request_error",
    "content_filter": "invalid_request_error", "auth": "authentication_error",
    "permission": "permission_error", "not_found": "not_found_error",
    "rate_limited": "rate_limit_error", "overloaded": "overloaded_error",
    "server": "api_error", "timeout": "api_error", "bad_response": "api_error",
}
#: The status answered to the client per kind (the provider's own when it has one).
DEFAULT_STATUS: dict[str, int] = {
    "bad_request": 400, "context_length": 400, "content_filter": 400, "auth": 401,
    "permission": 403, "not_found": 404, "rate_limited": 429, "overloaded": 529,
    "server": 502, "timeout": 504, "bad_response": 502,
}


@dataclass(eq=False)
class ProviderError(Exception):
    kind: ErrorKind
    message: str
    #: The provider's HTTP status (0: no answer).
    status: int = 0
    provider: str = ""
    #: Seconds to wait, when the provider said (``retry-after`` and the like).
    retry_after: float | None = None
    #: The provider's own error code or type, when it gave one.
    code: str | None = None

    def __str__(self) -> str:
        where = f"{self.provider} " if self.provider else ""
        return f"{where}{self.kind} ({self.status}): {self.message}"

    @property
    def retryable(self) -> bool:
        """Worth trying again here or elsewhere (the router's fallbacks)."""
        return self.kind in ("rate_limited", "overloaded", "server", "timeout",
                             "context_length", "bad_response")

    def client_status(self) -> int:
        """The status to answer the client with."""
        if self.kind in ("server", "timeout", "bad_response"):
            return DEFAULT_STATUS[self.kind]  # never relay an upstream 500 as ours
        return self.status if 400 <= self.status < 600 else DEFAULT_STATUS[self.kind]

    def openai_body(self) -> dict[str, Any]:
        """OpenAI's error object: ``{"error": {message, type, param, code}}``."""
        code = self.code or ("context_length_exceeded" if self.kind == "context_length"
                             else None)
        return {"error": {"message": str(self), "type": _OPENAI_TYPE[self.kind],
                          "param": None, "code": code}}

    def anthropic_body(self) -> dict[str, Any]:
        """Anthropic's error object: ``{"type": "error", "error": {type, message}}``."""
        return {"type": "error", "error": {"type": _ANTHROPIC_TYPE[self.kind],
                                           "message": str(self)}}


def retry_after_seconds(headers: dict[str, str] | None) -> float | None:
    """Seconds from ``retry-after`` (seconds form) or ``retry-after-ms``; None when
    absent or not a number (an HTTP date is not worth honouring here)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None

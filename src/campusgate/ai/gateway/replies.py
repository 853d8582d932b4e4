"""Writing the AI endpoints' answers on the client connection: JSON, errors in the
client API's own shape, and the head of an event stream.

A client of the OpenAI paths gets OpenAI's error object, a client of ``/messages``
Anthropic's, always with the provider's reason kept and the status from
:meth:`~campusgate.ai.errors.ProviderError.client_status` -- never a stack trace.
"""

from __future__ import annotations

from typing import Any, Literal

from campusgate.ai.errors import ProviderError
from campusgate.ai.json_codec import dumps
from campusgate.proxy.backends import ResponseHook
from campusgate.proxy.context import HeaderList, RequestContext
from campusgate.proxy.http1 import ClientConnection
from campusgate.proxy.request import Request

__all__ = ["ApiShape", "error_payload", "start_stream", "write_error", "write_json"]

#: Which client API a path speaks: its error shape and its stream encoding.
ApiShape = Literal["openai", "anthropic", "responses"]


def error_payload(error: ProviderError, shape: ApiShape) -> dict[str, Any]:
    return error.anthropic_body() if shape == "anthropic" else error.openai_body()


def write_json(conn: ClientConnection, req: Request, ctx: RequestContext,
               on_response: ResponseHook, status: int, payload: Any,
               extra: HeaderList | None = None) -> None:
    """A whole JSON answer."""
    body = dumps(payload)
    headers: HeaderList = [(b"content-type", b"application/json"), *(extra or [])]
    ctx.status = status
    on_response(ctx, status, headers)
    conn.cork()  # the head and the body in one write
    try:
        conn.start_response(req, status, headers, len(body))
        conn.write_body(body)
        conn.end_body()
    finally:
        conn.uncork()


def write_error(conn: ClientConnection, req: Request, ctx: RequestContext,
                on_response: ResponseHook, error: ProviderError, shape: ApiShape) -> None:
    """``error`` in the client API's shape (with ``retry-after`` when known)."""
    extra: HeaderList = []
    if error.retry_after is not None and error.kind == "rate_limited":
        extra.append((b"retry-after", b"%d" % max(1, round(error.retry_after))))
    write_json(conn, req, ctx, on_response, error.client_status(),
               error_payload(error, shape), extra)


def start_stream(conn: ClientConnection, req: Request, ctx: RequestContext,
                 on_response: ResponseHook) -> None:
    """The head of a ``text/event-stream`` answer (chunked: no length is known)."""
    headers: HeaderList = [(b"content-type", b"text/event-stream; charset=utf-8"),
                           (b"cache-control", b"no-cache")]
    ctx.status = 200
    on_response(ctx, 200, headers)
    conn.start_response(req, 200, headers, None)

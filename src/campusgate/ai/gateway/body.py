"""Reading a client's JSON request body, bounded.

A body past ``ai.max_request_bytes`` is refused with 413 as soon as it is known to be
too large (from Content-Length, or while reading); a body that is not a JSON object
is a 400.  Both are the client's fault and say so in the client API's error shape
(:mod:`.replies`).  On a route with body-phase plugins the body they read (and maybe
changed) is the one used.
"""

from __future__ import annotations

from typing import Any

from campusgate.ai.errors import ProviderError
from campusgate.ai.json_codec import loads
from campusgate.proxy.bodies import BodyHooks, read_request_body
from campusgate.proxy.context import RequestContext
from campusgate.proxy.request import Request

__all__ = ["parse_json_object", "read_json_body"]


def _too_large(limit: int) -> ProviderError:
    return ProviderError("bad_request", f"the request body is larger than {limit} bytes",
                         status=413, code="request_too_large")


def parse_json_object(data: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 ``bad_request`` saying what is wrong."""
    if not data.strip():
        raise ProviderError("bad_request", "the request body is empty: send a JSON object",
                            status=400)
    try:
        value = loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProviderError("bad_request", f"the request body is not valid JSON: {exc}",
                            status=400) from None
    if not isinstance(value, dict):
        raise ProviderError("bad_request", "the request body must be a JSON object",
                            status=400)
    return value


async def read_json_body(req: Request, ctx: RequestContext, hooks: BodyHooks | None,
                         limit: int) -> dict[str, Any]:
    """Read the whole body (raises ClientDisconnected when the client goes away)."""
    if hooks is not None:
        payload, _ = await read_request_body(req, ctx, hooks)
        if payload is not None:
            if len(payload) > limit:
                raise _too_large(limit)
            return parse_json_object(payload)
    if req.content_length is not None and req.content_length > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    while data := await req.read_chunk():
        size += len(data)
        if size > limit:
            raise _too_large(limit)
        parts.append(data)
        if req.at_end:  # all read: no call more to be told so
            break
    return parse_json_object(parts[0] if len(parts) == 1 else b"".join(parts))

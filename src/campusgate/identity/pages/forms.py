"""Reading the pages' form posts: ``application/x-www-form-urlencoded`` only.

Every form here is a few short fields, so the body is read up to a small bound and
parsed with the standard library (no multipart parser, nothing to upload).  Another
content type reads as an empty form, which then fails its CSRF or parameter check.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request

__all__ = ["MAX_FORM_BYTES", "read_form"]

#: Far more than any of the forms (or an authorization request) needs.
MAX_FORM_BYTES = 64 * 1024


async def read_form(request: Request) -> ImmutableMultiDict[str, str]:
    """The posted fields, repeated names kept (empty when not urlencoded or too big)."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return ImmutableMultiDict()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return ImmutableMultiDict()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return ImmutableMultiDict()
    return ImmutableMultiDict(parse_qsl(text, keep_blank_values=True))

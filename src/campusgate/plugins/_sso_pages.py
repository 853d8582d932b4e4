"""What the ``sso`` plugin says when it cannot let a request through.

An :class:`SsoRefusal` is data that renders itself: a short HTML page for a browser,
the gateway's JSON error shape for everything else.  The message is for the user and
never holds a secret or a stack trace; the operator gets the cause in the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from campusgate.proxy.context import HeaderList, LocalResponse, RequestContext

__all__ = ["SsoRefusal", "wants_json"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;
padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}small{{color:#666}}</style>
</head><body><h1>{title}</h1><p>{message}</p>{link}
<p><small>Request id: {request_id}</small></p></body></html>
"""
#: Sent with every page: nothing to frame, embed or run.
_PAGE_HEADERS: HeaderList = [
    (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; "
                                 b"frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
]


def wants_json(ctx: RequestContext) -> bool:
    """An API call rather than a page view: not GET/HEAD, ``X-Requested-With:
    XMLHttpRequest``, or an ``Accept`` that names JSON and not HTML.  Such a request
    gets a 401 instead of a redirect to the login page."""
    if ctx.method not in ("GET", "HEAD"):
        return True
    if (ctx.header(b"x-requested-with") or b"").lower() == b"xmlhttprequest":
        return True
    accept = (ctx.header(b"accept") or b"").lower()
    return b"text/html" not in accept and b"json" in accept


@dataclass(frozen=True, slots=True)
class SsoRefusal:
    """A request the plugin answers itself, with an error."""

    status: int
    code: str
    title: str
    message: str
    #: A local path the page links to ("Sign in again").
    link: str | None = None
    retry_after: int | None = None

    def render(self, ctx: RequestContext, headers: HeaderList | None = None) -> LocalResponse:
        extra: HeaderList = list(headers or [])
        if self.retry_after is not None:
            extra.append((b"retry-after", str(self.retry_after).encode()))
        if wants_json(ctx):
            return LocalResponse.error(self.status, self.code, self.message,
                                       ctx.request_id, extra)
        link = (f'<p><a href="{escape(self.link)}">Sign in again</a></p>'
                if self.link else "")
        body = _PAGE.format(title=escape(self.title), message=escape(self.message),
                            link=link, request_id=escape(ctx.request_id))
        return LocalResponse(self.status, body.encode("utf-8"), [*_PAGE_HEADERS, *extra],
                             b"text/html; charset=utf-8")

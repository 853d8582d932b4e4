"""HTML responses of the identity pages: templates plus the headers every page needs.

Pages are Jinja2 templates (``pages/templates``, autoescaped) with no script and no
external asset.  Every page is sent with:

- ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'`` (no clickjacking of the
  login or consent buttons, RFC 9700 4.16);
- a CSP that allows nothing but the page's own styles, and forms that post only to the
  provider itself -- plus the client's redirect origin when the page's form ends in a
  redirect there (browsers apply ``form-action`` to the redirects after a POST);
- ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer`` (URLs of these
  pages carry transaction ids; nothing here should be cached or leak to the next
  site).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse

from campusgate.identity.context import IdentityContext
from campusgate.identity.pages import csrf

__all__ = ["error_page", "page", "page_language", "security_headers", "see_other",
           "source_of"]

_SAFE_SOURCE = re.compile(r"^[a-z][a-z0-9+.-]*:(//[A-Za-z0-9.\-\[\]:]+)?$")


@functools.cache
def _environment() -> Environment:
    """The template environment (built once; templates are package data)."""
    return Environment(loader=PackageLoader("campusgate.identity.pages", "templates"),
                       autoescape=select_autoescape(default=True), auto_reload=False)


def source_of(uri: str) -> str | None:
    """The CSP source expression of the origin ``uri`` lives at: ``https://host:port``,
    or ``com.example.app:`` for a private-use scheme."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        source = f"{scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    else:
        source = f"{scheme}:"
    return source if _SAFE_SOURCE.match(source) else None


def security_headers(form_targets: Iterable[str] = ()) -> dict[str, str]:
    """The headers of every page; ``form_targets``: URIs a form may end up at."""
    sources = ["'self'"]
    for uri in form_targets:
        source = source_of(uri)
        if source and source not in sources:
            sources.append(source)
    csp = ("default-src 'none'; style-src 'self' 'unsafe-inline'; "
           f"form-action {' '.join(sources)}; frame-ancestors 'none'; base-uri 'none'")
    return {"Content-Security-Policy": csp, "X-Frame-Options": "DENY",
            "Cache-Control": "no-store", "Pragma": "no-cache",
            "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def page_language(ui_locales: Iterable[str] = ()) -> str:
    """The ``lang`` of a page (OIDC Core 3.1.2.1 ``ui_locales``): only English exists,
    so an English tag the client prefers (``en-GB``) is kept, anything else is ``en``."""
    for tag in ui_locales:
        if re.fullmatch(r"en(-[A-Za-z0-9]{1,8})*", tag):
            return tag
    return "en"


def page(ctx: IdentityContext, template: str, values: Mapping[str, Any], *,
         status: int = 200, form_targets: Iterable[str] = (),
         csrf_cookie: str | None = None, lang: str = "en",
         headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """Render ``template``; ``csrf_cookie``: a new CSRF cookie value to set."""
    body = _environment().get_template(template).render(
        lang=lang, issuer=ctx.issuer, **values)
    response = HTMLResponse(body, status_code=status,
                            headers={**security_headers(form_targets), **(headers or {})})
    if csrf_cookie is not None:
        csrf.set_cookie(ctx, response, csrf_cookie)
    return response


def error_page(ctx: IdentityContext, status: int, title: str, message: str, *,
               headers: Mapping[str, str] | None = None, lang: str = "en") -> HTMLResponse:
    """A page that explains what went wrong and links nowhere else (it never
    redirects: the request could not be trusted to say where to)."""
    return page(ctx, "error.html", {"title": title, "message": message}, status=status,
                headers=headers, lang=lang)


def see_other(url: str) -> RedirectResponse:
    """303 See Other: after a POST, and between the pages of a sign-in."""
    return RedirectResponse(url, status_code=303, headers={
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

"""Cross-site request forgery protection for the identity pages' forms.

The signed double-submit cookie pattern (OWASP CSRF Prevention Cheat Sheet): each
browser gets a random ``cg_csrf`` cookie (HttpOnly, ``SameSite=Strict``), and every
form carries ``HMAC(key, purpose, cookie)``.  A POST is accepted only when its token
matches the cookie that came with it, so another site can neither read a token nor
make one; the purpose (``"login:<tx>"``, ``"consent:<tx>"``, ``"logout"``) keeps a
token for one form from being replayed on another.  The HMAC key is a subkey of the
installation keyring (``Keyring.subkey``), so nothing is stored.

A cross-site navigation does not carry a Strict cookie: a page reached that way gets
a fresh cookie with its form, which the browser then sends with the same-site POST.
"""

from __future__ import annotations

import base64
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from campusgate.identity.context import IdentityContext
from campusgate.identity.sessions import cookie_path, secure_cookies

__all__ = ["CSRF_COOKIE", "CSRF_FIELD", "form_token", "set_cookie", "valid"]

CSRF_COOKIE = "cg_csrf"
#: The form field that carries the token.
CSRF_FIELD = "csrf_token"
_LABEL = "identity csrf v1"


def _key(ctx: IdentityContext) -> bytes:
    return ctx.keyring.subkey(_LABEL)


def _token(ctx: IdentityContext, cookie: str, purpose: str) -> str:
    mac = hmac.digest(_key(ctx), f"{purpose}\0{cookie}".encode(), "sha256")
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def form_token(ctx: IdentityContext, request: Request, purpose: str) -> tuple[str, str | None]:
    """The token for a form with ``purpose``, and a new cookie value to set when the
    browser did not send one (else None)."""
    cookie = request.cookies.get(CSRF_COOKIE)
    fresh = None
    if not cookie or len(cookie) > 128:
        cookie = fresh = secrets.token_urlsafe(32)
    return _token(ctx, cookie, purpose), fresh


def set_cookie(ctx: IdentityContext, response: Response, value: str) -> None:
    response.set_cookie(CSRF_COOKIE, value, path=cookie_path(ctx),
                        secure=secure_cookies(ctx), httponly=True, samesite="strict")


def valid(ctx: IdentityContext, request: Request, token: object, purpose: str) -> bool:
    """Whether ``token`` (from the posted form) belongs to this browser and purpose."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not isinstance(token, str) or not token:
        return False
    return hmac.compare_digest(_token(ctx, cookie, purpose), token)

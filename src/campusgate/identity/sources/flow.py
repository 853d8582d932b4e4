"""One sign-in through a login source, from the button to the callback: sans-IO
parts and the record that ties them together.

Starting a sign-in makes a fresh ``state`` (the callback's CSRF token, RFC 6749 10.12
and RFC 9700 4.7), ``nonce`` (OIDC Core 3.1.2.1, replay of ID tokens) and PKCE S256
verifier (RFC 7636; RFC 9700 2.1.1 asks for it from confidential clients too).  They
are kept server-side (:class:`Pending`, ``ctx.ephemeral`` kind ``"source"``, under the
SHA-256 of the state, as long as a login transaction lives) with what to do
afterwards: resume a login transaction (``tx``), or finish a sign-in started from
outside (a ClassLink LaunchPad tile: ``client_id``, maybe none).

The state is also bound to the browser that started the sign-in: a random
``cg_source`` cookie (HttpOnly, SameSite=Lax so it comes back on the source's
redirect, scoped to the sources' paths) whose hash the record keeps.  A callback
whose state is unknown, used, or from another browser is never accepted -- that is
what keeps an attacker from signing a victim in as the attacker (login CSRF).  A
state is single use: the first callback claims it.  The callback tells an unknown
state (a LaunchPad tile: begin afresh) from another browser's (refuse: beginning
afresh there would loop forever in a browser that does not keep the cookie).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from campusgate.auth import authorization_request
from campusgate.auth.pkce import challenge, pkce_pair
from campusgate.identity.context import IdentityContext
from campusgate.identity.pages.transaction import LIFETIME
from campusgate.identity.sessions import cookie_path, secure_cookies

__all__ = ["BROWSER_COOKIE", "Pending", "authorization_url", "begin", "bind_browser",
           "claim"]

BROWSER_COOKIE = "cg_source"
_KIND = "source"


@dataclass(frozen=True)
class Pending:
    """A sign-in sent to a source and not back yet."""

    source: str
    verifier: str
    nonce: str
    #: SHA-256 of the browser's ``cg_source`` cookie.
    browser: str
    #: The login transaction to resume, or None for a sign-in started from outside.
    tx: str | None = None
    #: For a sign-in started from outside: the app to send the browser to afterwards.
    client_id: str | None = None


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def authorization_url(endpoint: str, *, client_id: str, redirect_uri: str, scopes: list[str],
                      state: str, nonce: str, verifier: str) -> str:
    """Where to send the browser: the source's authorization endpoint with our request
    (:mod:`campusgate.auth.authorization_request`)."""
    return authorization_request.authorization_url(
        endpoint, client_id=client_id, redirect_uri=redirect_uri, scopes=scopes,
        state=state, nonce=nonce, challenge=challenge(verifier))


def bind_browser(request: Request) -> tuple[str, bool]:
    """The browser's binding value, and whether it is new (then set the cookie)."""
    current = request.cookies.get(BROWSER_COOKIE)
    if current and 20 <= len(current) <= 64:
        return current, False
    return secrets.token_urlsafe(32), True


def set_browser_cookie(ctx: IdentityContext, response: Response, value: str) -> None:
    response.set_cookie(BROWSER_COOKIE, value, max_age=LIFETIME,
                        path=cookie_path(ctx), secure=secure_cookies(ctx),
                        httponly=True, samesite="lax")


async def begin(ctx: IdentityContext, source: str, browser: str, *, tx: str | None = None,
                client_id: str | None = None) -> tuple[str, Pending]:
    """A new pending sign-in: (its state, the record)."""
    state = secrets.token_urlsafe(32)
    pending = Pending(source=source, verifier=pkce_pair()[0],
                      nonce=secrets.token_urlsafe(24), browser=_digest(browser), tx=tx,
                      client_id=client_id)
    await ctx.ephemeral.put(_KIND, _digest(state), asdict(pending), LIFETIME)
    return state, pending


async def claim(ctx: IdentityContext, request: Request, source: str,
                state: str | None) -> Pending | Literal["unknown", "foreign"]:
    """The pending sign-in ``state`` names, for this browser and source -- once.
    Otherwise ``"unknown"`` (no state; unknown, expired or used) or ``"foreign"``
    (a live sign-in, of another browser or source: it is spent too)."""
    if not state or len(state) > 128:
        return "unknown"
    key = _digest(state)
    if not await ctx.ephemeral.claim(_KIND + "-used", key, LIFETIME):
        return "unknown"
    record = await ctx.ephemeral.take(_KIND, key)
    if record is None:
        return "unknown"
    try:
        pending = Pending(source=str(record["source"]), verifier=str(record["verifier"]),
                          nonce=str(record["nonce"]), browser=str(record["browser"]),
                          tx=_opt(record.get("tx")), client_id=_opt(record.get("client_id")))
    except KeyError:
        return "unknown"
    cookie = request.cookies.get(BROWSER_COOKIE) or ""
    if pending.source != source or not secrets.compare_digest(_digest(cookie),
                                                              pending.browser):
        return "foreign"
    return pending


def _opt(value: object) -> str | None:
    return None if value is None else str(value)

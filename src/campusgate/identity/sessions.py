"""Browser sessions at the identity provider: who is signed in, since when, where.

A session is server-side: the browser holds only a random cookie value
(``cg_session``, 256 bits), and the record lives in the state backend
(``ctx.ephemeral``, kind ``"session"``) under the SHA-256 of that value, so neither a
look at Redis nor a leaked log line yields a usable cookie.  The record carries a
separate public id (``sid``, the ID token's ``sid`` claim, OIDC Front-Channel Logout 2).

Lifetimes (``identity.session_idle_lifetime``, ``identity.session_lifetime``): a
session ends after the idle lifetime without use -- sliding, the record is refreshed
at most once a minute -- and at the latest the absolute lifetime after sign-in.  Every
sign-in starts a new session with a new cookie value (no session fixation, OWASP
Session Management); the cookie is ``HttpOnly``, ``SameSite=Lax`` (it must come along
when an application sends the browser to the authorization endpoint), ``Secure`` when
the issuer is https, scoped to the issuer's path, and lasts as long as the browser
session (the server enforces the lifetimes).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User

__all__ = [
    "SESSION_COOKIE",
    "Session",
    "add_client",
    "cookie_path",
    "current_session",
    "end_session",
    "start_session",
]

SESSION_COOKIE = "cg_session"
_KIND = "session"
#: The idle timer is pushed forward at most this often (one write a minute, not one
#: per request).
REFRESH_EVERY = 60


@dataclass(frozen=True)
class Session:
    """A signed-in browser."""

    #: Public session id (the ``sid`` claim); the cookie value is never exposed.
    id: str
    user_id: str
    #: When the user authenticated (epoch seconds): ``auth_time``.
    auth_time: int
    #: How (RFC 8176 values: ``pwd``).
    amr: tuple[str, ...]
    #: Clients that got a code in this session (for logout).
    clients: frozenset[str]


def cookie_path(ctx: IdentityContext) -> str:
    """Cookies of the identity pages are scoped to the issuer's path."""
    return ctx.config.issuer_path or "/"


def secure_cookies(ctx: IdentityContext) -> bool:
    return ctx.config.issuer.startswith("https:")


def _storage_key(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8")).hexdigest()


def _session(record: dict[str, Any]) -> Session | None:
    try:
        return Session(id=str(record["sid"]), user_id=str(record["user_id"]),
                       auth_time=int(record["auth_time"]),
                       amr=tuple(str(m) for m in record["amr"]),
                       clients=frozenset(str(c) for c in record["clients"]))
    except (KeyError, TypeError, ValueError):
        return None


def _remaining(ctx: IdentityContext, record: dict[str, Any], now: int) -> int:
    """Seconds this session still lives: the sooner of the idle and absolute ends."""
    idle_end = int(record["last_seen"]) + ctx.config.session_idle_lifetime
    absolute_end = int(record["auth_time"]) + ctx.config.session_lifetime
    return min(idle_end, absolute_end) - now


async def _load(ctx: IdentityContext, request: Request
                ) -> tuple[str, dict[str, Any], Session] | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    key = _storage_key(cookie)
    record = await ctx.ephemeral.get(_KIND, key)
    if record is None:
        return None
    session = _session(record)
    try:
        remaining = _remaining(ctx, record, ctx.now())
    except (KeyError, TypeError, ValueError):
        session = None
    if session is None or remaining <= 0:
        await ctx.ephemeral.delete(_KIND, key)
        return None
    return key, record, session


async def current_session(ctx: IdentityContext, request: Request) -> Session | None:
    """The browser's live session, or None (no cookie, unknown, idle or too old).

    Using a session keeps it alive: its idle timer restarts (written at most once a
    minute)."""
    loaded = await _load(ctx, request)
    if loaded is None:
        return None
    key, record, session = loaded
    now = ctx.now()
    if now - int(record["last_seen"]) >= REFRESH_EVERY:
        record["last_seen"] = now
        await ctx.ephemeral.put(_KIND, key, record, _remaining(ctx, record, now))
    return session


async def start_session(ctx: IdentityContext, response: Response, user: User,
                        amr: tuple[str, ...] | list[str], *,
                        replacing: Request | None = None) -> Session:
    """Sign ``user`` in: a new session and a new cookie on ``response``.

    ``replacing``: the request that signed in; the browser's previous session (if
    any) ends, so a cookie planted before sign-in is worthless after it."""
    if replacing is not None:
        old = replacing.cookies.get(SESSION_COOKIE)
        if old:
            await ctx.ephemeral.delete(_KIND, _storage_key(old))
    now = ctx.now()
    cookie = secrets.token_urlsafe(32)
    record: dict[str, Any] = {"sid": secrets.token_urlsafe(16), "user_id": user.id,
                              "auth_time": now, "amr": list(amr), "clients": [],
                              "last_seen": now}
    await ctx.ephemeral.put(_KIND, _storage_key(cookie), record,
                            _remaining(ctx, record, now))
    response.set_cookie(SESSION_COOKIE, cookie, path=cookie_path(ctx),
                        secure=secure_cookies(ctx), httponly=True, samesite="lax")
    session = _session(record)
    assert session is not None
    return session


async def end_session(ctx: IdentityContext, request: Request, response: Response) -> None:
    """Sign the browser out: forget its session and clear the cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await ctx.ephemeral.delete(_KIND, _storage_key(cookie))
    response.delete_cookie(SESSION_COOKIE, path=cookie_path(ctx),
                           secure=secure_cookies(ctx), httponly=True, samesite="lax")


async def add_client(ctx: IdentityContext, request: Request, client_id: str) -> None:
    """Remember that ``client_id`` got a code in the browser's session."""
    loaded = await _load(ctx, request)
    if loaded is None:
        return
    key, record, session = loaded
    if client_id in session.clients:
        return
    record["clients"] = sorted(session.clients | {client_id})
    await ctx.ephemeral.put(_KIND, key, record, _remaining(ctx, record, ctx.now()))

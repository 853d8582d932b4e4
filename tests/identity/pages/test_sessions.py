"""Server-side sessions: the cookie, idle and absolute lifetimes, sign-out."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import httpx
import pytest
from identity_harness import Clock, identity_config, sealed
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.sessions import (
    SESSION_COOKIE,
    add_client,
    current_session,
    end_session,
    start_session,
)


async def whoami(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    session = await current_session(ctx, request)
    if session is None:
        return JSONResponse(None)
    return JSONResponse({"sid": session.id, "user": session.user_id,
                         "auth_time": session.auth_time, "amr": list(session.amr),
                         "clients": sorted(session.clients)})


async def sign_in(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    user = await ctx.directory.find_user("alice")
    assert user is not None
    response = Response(status_code=204)
    await start_session(ctx, response, user, ("pwd",), replacing=request)
    return response


async def sign_out(request: Request) -> Response:
    response = Response(status_code=204)
    await end_session(request.app.state.identity, request, response)
    return response


async def used_by(request: Request) -> Response:
    await add_client(request.app.state.identity, request, request.path_params["client"])
    return Response(status_code=204)


@pytest.fixture
def client(identity_client: Callable[[Sequence[BaseRoute]], httpx.AsyncClient],
           alice: User) -> httpx.AsyncClient:
    return identity_client([Route("/whoami", whoami), Route("/in", sign_in, methods=["POST"]),
                            Route("/out", sign_out, methods=["POST"]),
                            Route("/used-by/{client}", used_by, methods=["POST"])])


async def test_a_session_says_who_and_since_when(client: httpx.AsyncClient, alice: User,
                                                 clock: Clock) -> None:
    assert (await client.get("/whoami")).json() is None
    await client.post("/in")
    me = (await client.get("/whoami")).json()
    assert me["user"] == alice.id
    assert me["auth_time"] == int(clock())
    assert me["amr"] == ["pwd"] and me["clients"] == []
    assert me["sid"] and me["sid"] != client.cookies[SESSION_COOKIE]


async def test_the_store_never_sees_the_cookie_value(
        client: httpx.AsyncClient, identity_ctx: IdentityContext) -> None:
    await client.post("/in")
    cookie = client.cookies[SESSION_COOKIE]
    assert len(cookie) >= 43  # 256 bits
    assert await identity_ctx.ephemeral.get("session", cookie) is None
    digest = hashlib.sha256(cookie.encode()).hexdigest()
    assert await identity_ctx.ephemeral.get("session", digest) is not None


async def test_idle_sessions_end(client: httpx.AsyncClient, clock: Clock,
                                 identity_ctx: IdentityContext) -> None:
    idle = identity_ctx.config.session_idle_lifetime
    await client.post("/in")
    clock.advance(idle - 10)
    assert (await client.get("/whoami")).json() is not None  # use restarts the timer
    clock.advance(idle - 10)
    assert (await client.get("/whoami")).json() is not None
    clock.advance(idle + 1)
    assert (await client.get("/whoami")).json() is None


async def test_sessions_end_at_the_absolute_lifetime_however_busy(
        client: httpx.AsyncClient, clock: Clock, identity_ctx: IdentityContext) -> None:
    lifetime = identity_ctx.config.session_lifetime
    step = identity_ctx.config.session_idle_lifetime // 2
    await client.post("/in")
    elapsed = 0
    while elapsed + step < lifetime:
        clock.advance(step)
        elapsed += step
        assert (await client.get("/whoami")).json() is not None
    clock.advance(lifetime - elapsed)
    assert (await client.get("/whoami")).json() is None


async def test_signing_in_again_ends_the_old_session(client: httpx.AsyncClient) -> None:
    await client.post("/in")
    old_cookie = client.cookies[SESSION_COOKIE]
    old_sid = (await client.get("/whoami")).json()["sid"]
    await client.post("/in")
    assert client.cookies[SESSION_COOKIE] != old_cookie
    assert (await client.get("/whoami")).json()["sid"] != old_sid
    client.cookies.set(SESSION_COOKIE, old_cookie)  # the old cookie is worthless
    assert (await client.get("/whoami")).json() is None


async def test_sign_out_forgets_the_session_and_clears_the_cookie(
        client: httpx.AsyncClient) -> None:
    await client.post("/in")
    cookie = client.cookies[SESSION_COOKIE]
    out = await client.post("/out")
    assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
    assert SESSION_COOKIE not in client.cookies
    client.cookies.set(SESSION_COOKIE, cookie)
    assert (await client.get("/whoami")).json() is None


async def test_clients_are_recorded(client: httpx.AsyncClient) -> None:
    await client.post("/in")
    await client.post("/used-by/lms")
    await client.post("/used-by/mobile")
    await client.post("/used-by/lms")
    assert (await client.get("/whoami")).json()["clients"] == ["lms", "mobile"]


async def test_cookie_is_secure_and_scoped_under_an_https_issuer(
        identity_ctx: IdentityContext, alice: User) -> None:
    identity_ctx.update(sealed(identity_config(issuer="https://id.example.edu/idp/"),
                               identity_ctx.keyring))
    response = Response()
    await start_session(identity_ctx, response, alice, ("pwd",))
    cookie = response.headers["set-cookie"].lower()
    assert "; secure" in cookie and "; httponly" in cookie and "samesite=lax" in cookie
    assert "path=/idp" in cookie
    assert "max-age" not in cookie and "expires" not in cookie  # a browser-session cookie

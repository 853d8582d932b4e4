"""Starting a sign-in through a login source: the login page's button, and a
LaunchPad tile.

- ``GET {issuer}/oauth2/sources/{name}/start?tx=<id>``: the login page's button.  The
  login transaction (``pages/transaction.py``) must be live; the sign-in resumes it.
- ``GET {issuer}/oauth2/sources/{name}/launch[?client_id=<app>]``: a sign-in started
  outside any application's request -- register it as the app's launch URL in
  ClassLink.  It begins a fresh flow with its own state; once signed in, the browser
  goes to the app's ``initiate_login_uri`` (OIDC Core 4), or to a "you are signed in"
  page.

Both make a :class:`~campusgate.identity.sources.flow.Pending` sign-in and send the
browser (303) to the source's authorization endpoint.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from campusgate.config.identity_sources import LoginSource
from campusgate.identity.context import IdentityContext
from campusgate.identity.pages import login, render, transaction
from campusgate.identity.paths import SOURCES
from campusgate.identity.sources import flow
from campusgate.identity.sources.errors import SourceError

__all__ = ["begin_sign_in", "callback_url", "launch", "start", "unknown_source"]


def callback_url(ctx: IdentityContext, name: str) -> str:
    """The redirect URI to register at the source."""
    return f"{ctx.url(SOURCES)}/{name}/callback"


def unknown_source(ctx: IdentityContext) -> Response:
    return render.error_page(ctx, 404, "Unknown sign-in option",
                             "This way of signing in is not set up here. Go back to the "
                             "application and sign in again.")


async def begin_sign_in(ctx: IdentityContext, request: Request, source: LoginSource, *,
                        tx: str | None = None, client_id: str | None = None) -> Response:
    """Send the browser to ``source`` with a new pending sign-in."""
    try:
        async with ctx.sources.use(source) as connection:
            endpoints = await connection.endpoints()
    except SourceError as exc:
        return exc.response(ctx)
    browser, fresh = flow.bind_browser(request)
    state, pending = await flow.begin(ctx, source.name, browser, tx=tx, client_id=client_id)
    response = render.see_other(flow.authorization_url(
        endpoints.authorization, client_id=source.client_id,
        redirect_uri=callback_url(ctx, source.name), scopes=list(source.scopes),
        state=state, nonce=pending.nonce, verifier=pending.verifier))
    if fresh:
        flow.set_browser_cookie(ctx, response, browser)
    return response


async def start(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    source = ctx.config.source(request.path_params["name"])
    if source is None:
        return unknown_source(ctx)
    tx = await transaction.load(ctx, request.query_params.get("tx"))
    if tx is None:
        return login.expired_page(ctx)
    return await begin_sign_in(ctx, request, source, tx=tx.id)


async def launch(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    source = ctx.config.source(request.path_params["name"])
    if source is None:
        return unknown_source(ctx)
    client_id = request.query_params.get("client_id")
    if client_id is not None and ctx.client(client_id) is None:
        return render.error_page(ctx, 400, "Unknown application",
                                 "This sign-in link names an application that is not "
                                 "registered here.")
    return await begin_sign_in(ctx, request, source, client_id=client_id)

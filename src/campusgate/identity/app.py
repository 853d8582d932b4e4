"""The identity provider's ASGI application: every endpoint, one Starlette app.

Each endpoint module contributes ``routes(issuer_path)``; this factory puts them
together and renders what escapes them: a state backend or database outage is a 503
with an OAuth error body, anything else a 500 without details (logged here).
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from campusgate.identity import authorize, classlink, discovery, paths, sources
from campusgate.identity.context import IdentityContext
from campusgate.identity.oauth import introspection, revocation, token_endpoint, userinfo
from campusgate.identity.pages import consent, login, logout, render
from campusgate.proxy.request import ClientDisconnected
from campusgate.state.base import StateUnavailable

__all__ = ["create_identity_app", "identity_routes"]

log = logging.getLogger("campusgate.identity")

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def identity_routes(issuer_path: str) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for module in (discovery, authorize, token_endpoint, revocation, introspection, userinfo,
                   login, consent, logout, classlink, sources):
        routes += module.routes(issuer_path)
    return routes


#: The endpoints a person's browser shows: they answer an outage with a page.
_PAGES = (paths.AUTHORIZE, paths.LOGIN, paths.CONSENT, paths.LOGOUT)
#: ...and so does every path under this prefix (the login sources' start, launch and
#: callback: a browser arrives there from the login page or from the source).
_PAGE_PREFIXES = (paths.SOURCES + "/",)


def _is_page(path: str) -> bool:
    return path in _PAGES or path.startswith(_PAGE_PREFIXES)


async def _unavailable(request: Request, exc: Exception) -> Response:
    log.error("identity %s %s: a store is unavailable: %s", request.method, request.url.path,
              exc)
    ctx: IdentityContext = request.app.state.identity
    if _is_page(request.url.path.removeprefix(ctx.config.issuer_path)):
        return render.error_page(
            ctx, 503, "Sign-in is unavailable for a moment",
            "The sign-in service cannot reach its storage. Please try again in a minute.",
            headers={"Retry-After": "5"})
    return JSONResponse({"error": "temporarily_unavailable",
                         "error_description": "the identity service's storage is "
                                              "unavailable; try again shortly"},
                        status_code=503, headers={**_NO_STORE, "Retry-After": "5"})


async def _failed(request: Request, exc: Exception) -> Response:
    """The last resort (Starlette's outermost middleware, which re-raises to the
    gateway afterwards: a client that left is not logged twice, or at all)."""
    if isinstance(exc, ClientDisconnected):  # the client left: nothing to answer
        return Response(status_code=499)
    if isinstance(exc, OSError):  # a database connection refused, reset...
        return await _unavailable(request, exc)
    log.exception("identity %s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "server_error",
                         "error_description": "internal error; see the gateway's log"},
                        status_code=500, headers=_NO_STORE)


def create_identity_app(ctx: IdentityContext) -> Starlette:
    """The app serving ``ctx``'s issuer: endpoints under the issuer's path."""
    app = Starlette(
        routes=identity_routes(ctx.config.issuer_path),
        exception_handlers={StateUnavailable: _unavailable, SQLAlchemyError: _unavailable,
                            Exception: _failed},
    )
    app.state.identity = ctx
    return app

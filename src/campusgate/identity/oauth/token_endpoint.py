"""The token endpoint (RFC 6749 3.2): ``POST {issuer}/oauth2/token``.

A thin async shell around the Authlib server (``server.py``): read the form-encoded
body and bring the signing keys up to date on the event loop, run
``create_token_response`` on a grant thread, answer.
Only POST is routed (anything else is 405); a body that is not form-encoded, or
repeats a parameter, is ``invalid_request``.  Every answer is JSON with
``Cache-Control: no-store`` and ``Pragma: no-cache`` (RFC 6749 5.1); errors are RFC
6749 5.2's, and a store outage is 503 ``temporarily_unavailable`` -- never a stack
trace.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from authlib.oauth2.rfc6749.errors import OAuth2Error  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campusgate.identity.context import IdentityContext
from campusgate.identity.oauth.errors import (
    STORE_ERRORS,
    TemporarilyUnavailableError,
    oauth_error_response,
)
from campusgate.identity.oauth.server import HttpRequest, oauth_server, read_form
from campusgate.identity.paths import TOKEN

__all__ = ["routes", "token_endpoint", "token_response"]

log = logging.getLogger("campusgate.identity")


def routes(issuer_path: str) -> list[Route]:
    return [Route(issuer_path + TOKEN, token_endpoint, methods=["POST"])]


async def token_endpoint(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    return await token_response(ctx, read_form(request, ctx.url(TOKEN)))


async def token_response(ctx: IdentityContext, reading: Awaitable[HttpRequest]) -> Response:
    """The answer to the token request ``reading`` reads (it may raise an
    ``OAuth2Error``, answered as such); also the ClassLink-shaped token endpoint's."""
    try:
        http = await reading
        server = oauth_server(ctx)
        await ctx.keys.refresh()  # another worker may have rotated the signing keys
        response: Response = await ctx.run_sync(server.create_token_response, http)
    except OAuth2Error as exc:
        return oauth_error_response(exc)
    except STORE_ERRORS as exc:
        log.error("identity: token request failed, a store is unavailable: %s", exc)
        return oauth_error_response(TemporarilyUnavailableError())
    return response

"""The UserInfo endpoint (OpenID Connect Core 5.3): claims about the signed-in user.

``GET`` or ``POST {issuer}/oauth2/userinfo`` with an access token, sent as
``Authorization: Bearer`` (RFC 6750 2.1) or, on POST, as a form ``access_token``
(2.2).  Tokens in the query string (2.3) are refused: they end up in logs and
``Referer`` headers (RFC 9700 4.3.2).  The token must carry ``openid``; the answer
is ``sub`` and the claims the token's scopes release (``identity/claims.py``).

Errors are RFC 6750 3.1's, in a ``WWW-Authenticate: Bearer`` challenge (and the same
``error`` in a JSON body): ``invalid_request`` 400, ``invalid_token`` 401 (unknown,
expired or revoked token, or a user since disabled or deleted), ``insufficient_scope``
403.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from campusgate.identity import paths
from campusgate.identity.claims import released_claims
from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.tokens import AccessToken, validate_access_token

__all__ = ["BearerError", "bearer_token", "bearer_user", "routes"]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FORM = "application/x-www-form-urlencoded"


class BearerError(Exception):
    """A refused protected-resource request (RFC 6750 3.1); renders itself."""

    statuses = {"invalid_request": 400, "invalid_token": 401, "insufficient_scope": 403}

    def __init__(self, error: str | None, description: str = "",
                 scope: str | None = None) -> None:
        super().__init__(description or error or "authentication required")
        self.error = error
        self.description = description
        self.scope = scope

    def response(self, realm: str) -> Response:
        params = [("realm", realm)]
        if self.error:
            params.append(("error", self.error))
        if self.description:
            params.append(("error_description", self.description))
        if self.scope:
            params.append(("scope", self.scope))
        challenge = "Bearer " + ", ".join(f'{name}="{_quote(value)}"' for name, value in params)
        body = {"error": self.error or "invalid_token"}
        if self.description:
            body["error_description"] = self.description
        return JSONResponse(body, status_code=self.statuses.get(self.error or "", 401),
                            headers={**_NO_STORE, "WWW-Authenticate": challenge})


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


async def bearer_token(request: Request) -> str:
    """The access token of a protected-resource request (RFC 6750 2), or BearerError."""
    if "access_token" in request.query_params:
        raise BearerError("invalid_request", "access tokens in the query string are not "
                                             "accepted; send an Authorization header")
    found: list[str] = []
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise BearerError("invalid_request", "the Authorization header is not "
                                                 "'Bearer <token>'")
        found.append(token.strip())
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type == _FORM:
        body = (await request.body()).decode("utf-8", "replace")
        found += [value for name, value in parse_qsl(body, keep_blank_values=True)
                  if name == "access_token"]
    if len(found) > 1:
        raise BearerError("invalid_request", "send the access token one way only")
    if not found or not found[0]:
        raise BearerError(None, "an access token is required")
    return found[0]


async def bearer_user(ctx: IdentityContext, request: Request,
                      scope: str) -> tuple[AccessToken, User]:
    """The access token of a protected-resource request and its user, once the token
    is valid, unexpired and unrevoked, carries ``scope``, and names a user who is
    still enabled; BearerError otherwise.  The UserInfo endpoint's check, and the
    ClassLink sandbox's data API's (``identity/classlink/caller.py``)."""
    info = await validate_access_token(ctx, await bearer_token(request))
    if info is None:
        raise BearerError("invalid_token", "the access token is invalid, expired or "
                                           "revoked")
    if scope not in info.scopes:
        raise BearerError("insufficient_scope", f"the access token lacks the {scope} "
                                                "scope", scope=scope)
    user = await ctx.directory.get_user(info.user_id) if info.user_id else None
    if user is None or user.disabled:
        raise BearerError("invalid_token", "the token's user is no longer active")
    return info, user


async def userinfo(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    try:
        info, user = await bearer_user(ctx, request, "openid")
    except BearerError as exc:
        return exc.response(ctx.issuer)
    return JSONResponse(released_claims(user, info.scopes, ctx.config.scopes),
                        headers=_NO_STORE)


def routes(issuer_path: str) -> list[Route]:
    return [Route(issuer_path + paths.USERINFO, userinfo, methods=["GET", "POST"])]

"""Token introspection (RFC 7662): a resource server asks whether a token is active.

``POST {issuer}/oauth2/introspect`` with ``token`` (and an optional
``token_type_hint``).  The caller must authenticate as a confidential client
(2.1: otherwise 401 ``invalid_client``).  It learns about a token only if the token
was issued to it, or if it is registered with ``can_introspect`` (a resource server,
the gateway's own introspection plugin); any other token, like an unknown, expired
or revoked one, is just ``{"active": false}`` (2.2), so a client cannot probe for
other clients' tokens.

Access tokens (JWT or opaque) and refresh tokens can be introspected.  A refresh
token already exchanged (rotation), or one whose grant was revoked, is inactive; so
is any token of a user since disabled or deleted.

The form is read and the client authenticated as at the token endpoint
(``oauth/server.py``, ``oauth/client_auth.py``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from campusgate.config.identity import IdentityClient
from campusgate.identity import paths
from campusgate.identity.context import IdentityContext
from campusgate.identity.oauth.errors import OAuth2Error, oauth_error_response
from campusgate.identity.oauth.server import read_token_request
from campusgate.identity.tokens import REFRESH_PREFIX, validate_access_token

__all__ = ["introspect", "routes"]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_INACTIVE = {"active": False}


def _may_see(caller: IdentityClient, owner: str) -> bool:
    return caller.client_id == owner or caller.can_introspect


async def _user_active(ctx: IdentityContext, user_id: str | None) -> tuple[bool, str | None]:
    """Whether the token's user (if any) still exists and may sign in, and their name."""
    if user_id is None:
        return True, None
    user = await ctx.directory.get_user(user_id)
    if user is None or user.disabled:
        return False, None
    return True, user.username


async def _access_token(ctx: IdentityContext, caller: IdentityClient,
                        token: str) -> dict[str, Any] | None:
    info = await validate_access_token(ctx, token)
    if info is None or not _may_see(caller, info.client_id):
        return None
    active, username = await _user_active(ctx, info.user_id)
    if not active:
        return None
    answer: dict[str, Any] = {
        "active": True, "scope": info.scope, "client_id": info.client_id,
        "token_type": "Bearer", "exp": info.expires_at, "iat": info.issued_at,
        "sub": info.subject,
        "aud": info.audience[0] if len(info.audience) == 1 else list(info.audience),
        "iss": ctx.issuer, "jti": info.token_id,
    }
    if username is not None:
        answer["username"] = username
    if info.auth_time is not None:
        answer["auth_time"] = info.auth_time
    return answer


async def _refresh_token(ctx: IdentityContext, caller: IdentityClient,
                         token: str) -> dict[str, Any] | None:
    if not token.startswith(REFRESH_PREFIX):
        return None
    record = await ctx.directory.find_refresh_token(token)
    if record is None or record.revoked or record.used_at is not None \
            or record.expires_at <= ctx.now() or ctx.client(record.client_id) is None \
            or not _may_see(caller, record.client_id):
        return None
    active, username = await _user_active(ctx, record.user_id)
    if not active:
        return None
    answer: dict[str, Any] = {
        "active": True, "scope": record.scope, "client_id": record.client_id,
        "token_type": "refresh_token", "exp": record.expires_at, "iat": record.issued_at,
        "sub": record.user_id or record.client_id, "aud": record.client_id,
        "iss": ctx.issuer,
    }
    if username is not None:
        answer["username"] = username
    return answer


async def introspect(ctx: IdentityContext, caller: IdentityClient, token: str,
                     hint: str | None) -> dict[str, Any]:
    """RFC 7662 2.2's answer about ``token`` for ``caller``."""
    lookups = [_access_token, _refresh_token]
    if hint == "refresh_token":
        lookups.reverse()
    for lookup in lookups:
        answer = await lookup(ctx, caller, token)
        if answer is not None:
            return answer
    return dict(_INACTIVE)


async def introspection(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    try:
        asked = await read_token_request(ctx, request, paths.INTROSPECT, "introspection")
    except OAuth2Error as exc:
        return oauth_error_response(exc)
    answer = await introspect(ctx, asked.client, asked.token, asked.hint)
    return JSONResponse(answer, headers=_NO_STORE)


def routes(issuer_path: str) -> list[Route]:
    return [Route(issuer_path + paths.INTROSPECT, introspection, methods=["POST"])]

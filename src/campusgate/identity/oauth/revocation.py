"""Token revocation (RFC 7009): a client says it no longer needs a token.

``POST {issuer}/oauth2/revoke`` with ``token`` (and an optional
``token_type_hint``).  The client authenticates as it does at the token endpoint
(``oauth/client_auth.py``); a public client names itself with ``client_id``
(RFC 7009 2.1, 5).

- A refresh token revokes its whole grant: every refresh token of the family and
  every access token issued from it (RFC 7009 2.1 "SHOULD also invalidate all access
  tokens based on the same authorization grant"; RFC 9700 4.14.2).
- An access token is revoked alone, until it would have expired.
- A token of another client, an unknown, expired or already revoked token, changes
  nothing and is answered 200 all the same (2.2): the answer tells a client nothing
  about tokens that are not its own.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campusgate.config.identity import IdentityClient
from campusgate.identity import paths
from campusgate.identity.context import IdentityContext
from campusgate.identity.oauth.errors import OAuth2Error, oauth_error_response
from campusgate.identity.oauth.server import read_token_request
from campusgate.identity.tokens import (
    REFRESH_PREFIX,
    revoke_access_token,
    revoke_grant,
    validate_access_token,
)

__all__ = ["revoke", "routes"]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def _refresh_token(ctx: IdentityContext, client: IdentityClient, token: str) -> bool:
    if not token.startswith(REFRESH_PREFIX):
        return False
    record = await ctx.directory.find_refresh_token(token)
    if record is None:
        return False
    if record.client_id == client.client_id and not record.revoked:
        await revoke_grant(ctx, record.grant_id)
    return True


async def _access_token(ctx: IdentityContext, client: IdentityClient, token: str) -> bool:
    info = await validate_access_token(ctx, token)
    if info is None:
        return False
    if info.client_id == client.client_id:
        await revoke_access_token(ctx, info)
    return True


async def revoke(ctx: IdentityContext, client: IdentityClient, token: str,
                 hint: str | None) -> None:
    """Revoke ``token`` if it is ``client``'s; otherwise do nothing."""
    lookups = [_access_token, _refresh_token]
    if hint == "refresh_token":
        lookups.reverse()
    for lookup in lookups:
        if await lookup(ctx, client, token):
            return


async def revocation(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    try:
        asked = await read_token_request(ctx, request, paths.REVOKE, "revocation")
    except OAuth2Error as exc:
        return oauth_error_response(exc)
    await revoke(ctx, asked.client, asked.token, asked.hint)
    return Response(status_code=200, headers=_NO_STORE)


def routes(issuer_path: str) -> list[Route]:
    return [Route(issuer_path + paths.REVOKE, revocation, methods=["POST"])]

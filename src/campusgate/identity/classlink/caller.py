"""Who calls the ClassLink-shaped data API: the bearer of an access token campusgate
issued (RFC 6750), checked by the UserInfo endpoint's own check
(:func:`~campusgate.identity.oauth.userinfo.bearer_user`).

The token comes in ``Authorization: Bearer`` (ClassLink's libraries write
``bearer``: the scheme is case-insensitive); it must be valid, unexpired and
unrevoked, belong to a user who is still enabled, and carry the scope the endpoint
needs -- ``profile`` for ``/v2/my/...``, ``roster`` for ``/v2/oneroster/...`` (what
ClassLink's ``profile`` and ``oneroster`` scopes become).  Refusals are RFC 6750
3.1's ``WWW-Authenticate: Bearer`` challenges: 401 ``invalid_token`` (or no error
code when there is no token at all), 403 ``insufficient_scope``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from campusgate.config.classlink_sandbox import ClassLinkSandbox
from campusgate.identity.classlink.sandbox import not_found, sandbox_of
from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.oauth.userinfo import BearerError, bearer_user
from campusgate.identity.tokens import AccessToken

__all__ = ["Caller", "Handler", "SandboxOff", "caller", "protected"]


class SandboxOff(Exception):
    """The sandbox is not enabled: the endpoint answers 404."""


@dataclass(frozen=True)
class Caller:
    """An authorized data API request."""

    ctx: IdentityContext
    sandbox: ClassLinkSandbox
    token: AccessToken
    user: User


async def caller(request: Request, scope: str) -> Caller:
    """The request's :class:`Caller`; raises :class:`SandboxOff` or
    :class:`BearerError`."""
    ctx: IdentityContext = request.app.state.identity
    sandbox = sandbox_of(ctx)
    if sandbox is None:
        raise SandboxOff
    info, user = await bearer_user(ctx, request, scope)
    return Caller(ctx, sandbox, info, user)


Handler = Callable[[Request, Caller], Awaitable[Response]]


def protected(scope: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint: ``handler`` called for an authorized :class:`Caller`,
    refusals rendered (404 while the sandbox is off, RFC 6750 challenges)."""

    async def endpoint(request: Request) -> Response:
        try:
            found = await caller(request, scope)
        except SandboxOff:
            return not_found()
        except BearerError as exc:
            ctx: IdentityContext = request.app.state.identity
            return exc.response(ctx.issuer)
        return await handler(request, found)

    return endpoint

"""The authorization endpoint: who is asking, is the user signed in, did they agree.

``GET`` or ``POST`` (form-encoded, OIDC Core 3.1.2.1) ``{issuer}/oauth2/authorize``.
The request itself is checked by :func:`~campusgate.identity.oauth.authorization.
validate_authorization_request` (client, redirect URI, response type, scopes, PKCE;
its errors render themselves -- a redirect with ``error`` and ``iss``, or an error page
that never redirects).  This module adds the user's side, in order:

1. **Sign-in** -- a live session (``identity/sessions.py``) of an enabled user, unless
   ``prompt=login`` (OIDC Core 3.1.2.1) or ``max_age`` says the sign-in is too old
   (``now - auth_time > max_age``).  Otherwise: ``prompt=none`` answers
   ``login_required``; any other request becomes a login transaction and goes to the
   login page.
2. **Consent** -- asked when the client ``require_consent`` and the user's remembered
   consent does not cover the scopes, or when ``prompt=consent``; with ``prompt=none``
   that is ``consent_required``.  The consent page finishes the request itself.
3. **The code** -- :func:`~campusgate.identity.oauth.authorization.issue_code`, and
   the client is recorded in the session (for logout).

A login transaction comes back here as ``?tx=<id>`` (and nothing else: a request
with a ``client_id`` is always a new request).  Its parameters are validated again --
the configuration may have changed meanwhile -- and a login that happened for this
transaction satisfies its ``prompt=login`` and ``max_age``.
"""

from __future__ import annotations

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.oauth.authorization import (
    AuthorizationError,
    AuthorizationRequest,
    error_response,
    issue_code,
    validate_authorization_request,
)
from campusgate.identity.pages import forms, login, render, transaction
from campusgate.identity.pages.transaction import Transaction
from campusgate.identity.paths import AUTHORIZE, CONSENT
from campusgate.identity.sessions import Session, add_client, current_session

__all__ = ["complete", "consent_needed", "routes", "signed_in"]


def routes(issuer_path: str) -> list[Route]:
    return [Route(issuer_path + AUTHORIZE, authorization_endpoint, methods=["GET", "POST"])]


async def _parameters(request: Request) -> ImmutableMultiDict[str, str]:
    """The request's parameters: the query, or the form body of a POST (repeated
    names kept, so that validation can refuse them)."""
    if request.method != "POST":
        return request.query_params
    return await forms.read_form(request)


async def authorization_endpoint(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    params = await _parameters(request)
    tx = None
    if "tx" in params and "client_id" not in params:
        tx = await transaction.load(ctx, params["tx"])
        if tx is None:
            return login.expired_page(ctx)
    try:
        req = await validate_authorization_request(ctx, tx.params if tx else params)
    except AuthorizationError as exc:
        return exc.response(ctx)
    return await _authorize(ctx, request, req, tx)


async def signed_in(ctx: IdentityContext, request: Request) -> tuple[Session, User] | None:
    """The browser's session and its user, if there is one and the user may sign in."""
    session = await current_session(ctx, request)
    if session is None:
        return None
    user = await ctx.directory.get_user(session.user_id)
    if user is None or user.disabled:
        return None
    return session, user


def _too_old(ctx: IdentityContext, req: AuthorizationRequest, session: Session) -> bool:
    """Whether the request wants a fresh sign-in (OIDC Core 3.1.2.1 prompt, max_age)."""
    if "login" in req.prompt:
        return True
    return req.max_age is not None and ctx.now() - session.auth_time > req.max_age


async def consent_needed(ctx: IdentityContext, req: AuthorizationRequest, user: User) -> bool:
    if "consent" in req.prompt:
        return True
    if not req.client.require_consent:
        return False
    return not await ctx.directory.consent_covers(user.id, req.client.client_id, req.scopes)


async def _authorize(ctx: IdentityContext, request: Request, req: AuthorizationRequest,
                     tx: Transaction | None) -> Response:
    current = await signed_in(ctx, request)
    fresh = current is not None and tx is not None and tx.sid == current[0].id
    if current is None or (not fresh and _too_old(ctx, req, current[0])):
        if "none" in req.prompt:
            return error_response(ctx, req, "login_required",
                                  "The user is not signed in.")
        tx = tx or await transaction.begin(ctx, req.params)
        return render.see_other(login.login_url(ctx, tx))
    session, user = current
    if await consent_needed(ctx, req, user):
        if "none" in req.prompt:
            return error_response(ctx, req, "consent_required",
                                  "The user has not allowed this client these scopes.")
        tx = tx or await transaction.begin(ctx, req.params)
        return render.see_other(f"{ctx.url(CONSENT)}?tx={tx.id}")
    return await complete(ctx, request, req, session, user, tx)


async def complete(ctx: IdentityContext, request: Request, req: AuthorizationRequest,
                   session: Session, user: User, tx: Transaction | None) -> Response:
    """Issue the code (redirect to the client) and note the client in the session."""
    response = await issue_code(ctx, req, user, session.auth_time, session.id,
                                amr=session.amr)
    await add_client(ctx, request, req.client.client_id)
    if tx is not None:
        await transaction.finish(ctx, tx)
    return response

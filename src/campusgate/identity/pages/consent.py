"""The consent page: the user allows (or denies) a client the scopes it asked for.

``GET {issuer}/oauth2/consent?tx=<id>`` names the client and lists what each scope
lets it do; the form posts back (CSRF token, ``decision=allow|deny``).  Allow
remembers the consent for this client and scope set (``directory.save_consent``: asked
again only for new scopes, or when the operator revokes it) and finishes the
authorization request with a code; Deny answers the client ``access_denied`` (RFC 6749
4.1.2.1).  Both are redirects to the client, which the page's CSP ``form-action``
allows.  The page always acts for the browser's current session: without one, the
request goes back through the login.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campusgate.identity import authorize
from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.oauth.authorization import (
    AuthorizationError,
    AuthorizationRequest,
    error_response,
    validate_authorization_request,
)
from campusgate.identity.pages import csrf, forms, login, render, transaction
from campusgate.identity.pages.transaction import Transaction
from campusgate.identity.paths import AUTHORIZE, CONSENT
from campusgate.identity.sessions import Session

__all__ = ["STANDARD_DESCRIPTIONS", "describe_scopes", "routes"]

#: What each standard scope lets a client do, in the user's words.
STANDARD_DESCRIPTIONS = {
    "openid": "Know who you are (your account identifier)",
    "profile": "See your name and basic profile",
    "email": "See your email address",
    "address": "See your postal address",
    "phone": "See your phone number",
    "offline_access": "Keep access when you are not using it",
}


def routes(issuer_path: str) -> list[Route]:
    return [Route(issuer_path + CONSENT, consent_page, methods=["GET", "POST"])]


def describe_scopes(ctx: IdentityContext, scopes: Iterable[str]) -> list[dict[str, str]]:
    """``[{"name", "description"}]`` for the page, in the order asked."""
    defined = {scope.name: scope.description for scope in ctx.config.scopes}
    described = []
    for name in scopes:
        text = STANDARD_DESCRIPTIONS.get(name) or defined.get(name) or f"Use “{name}”"
        described.append({"name": name, "description": text})
    return described


def _url(ctx: IdentityContext, tx: Transaction) -> str:
    return f"{ctx.url(CONSENT)}?tx={tx.id}"


async def consent_page(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    tx = await transaction.load(ctx, request.query_params.get("tx"))
    if tx is None:
        return login.expired_page(ctx)
    current = await authorize.signed_in(ctx, request)
    if current is None:  # signed out meanwhile: through the login again
        return render.see_other(f"{ctx.url(AUTHORIZE)}?tx={tx.id}")
    session, user = current
    try:
        req = await validate_authorization_request(ctx, tx.params)
    except AuthorizationError as exc:
        await transaction.finish(ctx, tx)
        return exc.response(ctx)
    purpose = f"consent:{tx.id}:{session.id}"
    lang = render.page_language(req.ui_locales)
    if request.method == "POST":
        form = await forms.read_form(request)
        if not csrf.valid(ctx, request, form.get(csrf.CSRF_FIELD), purpose):
            return login.forged_page(ctx, _url(ctx, tx), lang)
        return await _decide(ctx, request, req, tx, (session, user), form.get("decision"))
    token, fresh = csrf.form_token(ctx, request, purpose)
    return render.page(ctx, "consent.html", {
        "action": _url(ctx, tx), "csrf_token": token, "username": user.username,
        "client_name": req.client.name or req.client.client_id,
        "scopes": describe_scopes(ctx, req.scopes),
    }, csrf_cookie=fresh, lang=lang, form_targets=[req.redirect_uri])


async def _decide(ctx: IdentityContext, request: Request, req: AuthorizationRequest,
                  tx: Transaction, current: tuple[Session, User], decision: object
                  ) -> Response:
    session, user = current
    if decision != "allow":
        await transaction.finish(ctx, tx)
        return error_response(ctx, req, "access_denied", "The user denied the request.")
    await ctx.directory.save_consent(user.id, req.client.client_id, req.scopes)
    return await authorize.complete(ctx, request, req, session, user, tx)

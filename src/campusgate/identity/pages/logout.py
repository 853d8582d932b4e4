"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): ``GET`` or ``POST``
``{issuer}/oauth2/logout``, the ``end_session_endpoint``.

Parameters (section 2): ``id_token_hint`` -- an ID token we issued, checked against our
key set and issuer (an expired one is fine: it only says who and for which client);
``client_id``; ``post_logout_redirect_uri``, which must be one of that client's
``post_logout_redirect_uris`` exactly, so the client must be known from the hint or
``client_id`` (otherwise an error page: this endpoint is never an open redirect);
``state``, handed back.

A valid hint whose subject is the signed-in user ends the session at once.  Anything
less (no hint, or a hint for another user) asks first: "Sign out of campusgate?" with a
CSRF-protected form, since any site can send a browser here (section 6).  Signing out
forgets the server-side session, clears the cookie, and sends the browser to the
post-logout URI (303, with ``state``) or shows "You are signed out".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campusgate.auth.jwt_verify import (
    ClaimsPolicy,
    TokenError,
    allowed_algorithm,
    check_claims,
    parse_token,
    verify_signature,
)
from campusgate.config.identity import IdentityClient
from campusgate.identity.context import IdentityContext
from campusgate.identity.pages import csrf, forms, render
from campusgate.identity.paths import LOGOUT
from campusgate.identity.sessions import current_session, end_session

__all__ = ["LogoutError", "LogoutRequest", "read_logout_request", "routes"]

_PURPOSE = "logout"
_ID_TOKEN_ALGORITHMS = ("RS256", "ES256")


def routes(issuer_path: str) -> list[Route]:
    return [Route(issuer_path + LOGOUT, logout_endpoint, methods=["GET", "POST"])]


class LogoutError(Exception):
    """A logout request that cannot be followed; the message is for the user."""


@dataclass(frozen=True)
class LogoutRequest:
    client: IdentityClient | None
    #: A registered post-logout redirect URI, checked.
    redirect_uri: str | None
    state: str | None
    #: ``sub`` of a valid ``id_token_hint``.
    subject: str | None

    def hidden_fields(self) -> list[tuple[str, str]]:
        """What the confirmation form carries over (the hint has served its purpose)."""
        fields = [("client_id", self.client.client_id if self.client else None),
                  ("post_logout_redirect_uri", self.redirect_uri), ("state", self.state)]
        return [(name, value) for name, value in fields if value is not None]


async def _hint_claims(ctx: IdentityContext, hint: str) -> Mapping[str, object]:
    """The claims of an ID token we issued (signature and ``iss``; not expiry)."""
    try:
        token = parse_token(hint.encode("ascii", "replace"))
        allowed_algorithm(token, _ID_TOKEN_ALGORITHMS)
        typ = str(token.header.get("typ", "JWT")).lower()
        if typ not in ("jwt", "application/jwt"):
            raise TokenError("not an ID token")
        if token.kid is None:
            raise TokenError("no kid")
        try:
            key = ctx.keys.key_set().get_by_kid(token.kid)
        except (JoseError, ValueError):
            await ctx.keys.refresh()  # rotated on another worker?
            key = ctx.keys.key_set().get_by_kid(token.kid)
        verify_signature(token, key)
        check_claims(token.claims, ClaimsPolicy(issuer=ctx.issuer, required=frozenset(),
                                                leeway=float("inf")), ctx.now())
        if not isinstance(token.claims.get("sub"), str):
            raise TokenError("no sub")
    except (TokenError, JoseError, ValueError) as exc:
        raise LogoutError("The sign-out request came with an ID token that was not "
                          "issued here.") from exc
    return token.claims


def _audience(claims: Mapping[str, object]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


async def read_logout_request(ctx: IdentityContext, params: Mapping[str, str]
                              ) -> LogoutRequest:
    """Check the parameters (section 2, 3); :class:`LogoutError` when they do not hold."""
    claims = None
    if params.get("id_token_hint"):
        claims = await _hint_claims(ctx, params["id_token_hint"])
    client = None
    if params.get("client_id"):
        client = ctx.client(params["client_id"])
        if client is None:
            raise LogoutError("The application asking to sign you out is not known here.")
    if claims is not None:
        audience = _audience(claims)
        if client is not None and client.client_id not in audience:
            raise LogoutError("The sign-out request's ID token belongs to another "
                              "application.")
        if client is None:
            azp = claims.get("azp")
            named = azp if isinstance(azp, str) else (audience[0] if len(audience) == 1
                                                       else None)
            client = ctx.client(named)
    uri = params.get("post_logout_redirect_uri") or None
    if uri is not None and (client is None or uri not in client.post_logout_redirect_uris):
        raise LogoutError("The address to return to after signing out is not registered "
                          "for the application.")
    return LogoutRequest(client=client, redirect_uri=uri, state=params.get("state") or None,
                         subject=str(claims["sub"]) if claims is not None else None)


def _return_to(req: LogoutRequest) -> str | None:
    if req.redirect_uri is None:
        return None
    if req.state is None:
        return req.redirect_uri
    parts = urlsplit(req.redirect_uri)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True),
                       ("state", req.state)])
    return urlunsplit(parts._replace(query=query))


async def logout_endpoint(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    params: Mapping[str, str] = request.query_params
    confirmed = False
    if request.method == "POST":
        params = await forms.read_form(request)
        confirmed = csrf.CSRF_FIELD in params
    try:
        req = await read_logout_request(ctx, params)
    except LogoutError as exc:
        return render.error_page(ctx, 400, "This sign-out request is not valid", str(exc))
    if confirmed:
        if not csrf.valid(ctx, request, params[csrf.CSRF_FIELD], _PURPOSE):
            retry = ctx.url(LOGOUT) + ("?" + urlencode(req.hidden_fields())
                                       if req.hidden_fields() else "")
            return render.page(ctx, "error.html", {
                "title": "Your session on this page expired",
                "message": "The sign-out form could not be accepted (it expired, or was "
                           "sent from another site). Please try again.",
                "link": {"href": retry, "text": "Try again"}}, status=403)
        return await _sign_out(ctx, request, req, after_post=True)
    session = await current_session(ctx, request)
    if session is None or (req.subject is not None and req.subject == session.user_id):
        return await _sign_out(ctx, request, req, after_post=request.method == "POST")
    token, fresh = csrf.form_token(ctx, request, _PURPOSE)
    client = req.client
    return render.page(ctx, "logout.html", {
        "action": ctx.url(LOGOUT), "csrf_token": token, "hidden": req.hidden_fields(),
        "client_name": (client.name or client.client_id) if client else None,
    }, csrf_cookie=fresh, form_targets=[req.redirect_uri] if req.redirect_uri else [],
        lang=render.page_language(params.get("ui_locales", "").split()))


async def _sign_out(ctx: IdentityContext, request: Request, req: LogoutRequest, *,
                    after_post: bool) -> Response:
    target = _return_to(req)
    response: Response
    if target is not None:
        response = render.see_other(target)
    elif after_post:  # 303 to a page that says so
        response = render.see_other(ctx.url(LOGOUT))
    else:
        response = render.page(ctx, "signed_out.html", {})
    await end_session(ctx, request, response)
    return response

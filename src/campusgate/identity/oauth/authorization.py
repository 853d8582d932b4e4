"""The OAuth half of the authorization endpoint (RFC 6749 4.1.1-4.1.2, OIDC Core
3.1.2): is the request acceptable, and the answer it gets.

``identity/authorize.py`` owns the route and the user's side (session, login,
consent) and calls three functions here:

- :func:`validate_authorization_request` -- Authlib's validation (the server's
  ``get_consent_grant``: client, redirect URI, response type, scope, then the code
  grant's extensions: PKCE and the OpenID Connect parameters) turned into an
  :class:`AuthorizationRequest`, or an :class:`AuthorizationError`;
- :func:`issue_code` -- the code (``grants/authorization_code.py``) and the redirect
  that carries it;
- :func:`error_response` -- the redirect that carries an error decided on the user's
  side (``login_required``, ``consent_required``, ``access_denied`` ...).

Where an error goes (RFC 6749 4.1.2.1): to the client only once its redirect URI is
known to be registered -- exact string match, loopback port excepted (``clients.py``);
an unknown client or an unregistered, mismatched or missing redirect URI gets an error
page (400) that never redirects.

Every redirect is a **303 See Other**, whether the request was a GET or a POST (OIDC
Core 3.1.2.1 allows POST): after a POST a 303 makes the browser GET the client's
URI instead of re-posting the form there (RFC 9700 4.12), and after a GET it is as
good as a 302.  Each carries ``iss`` (RFC 9207) and, when the request had one,
``state``.  Parameters the server does not know are ignored; a known one given twice
is ``invalid_request``.  Pass the request's own parameter collection (Starlette's
``request.query_params`` or form) so that repeats can be seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.common.urls import add_params_to_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.errors import OAuth2Error  # type: ignore[import-untyped]
from starlette.responses import Response

from campusgate.config.identity import IdentityClient
from campusgate.identity.oauth.grants.authorization_code import (
    PROMPTS,
    CodeRecord,
    new_code,
    save_code,
)
from campusgate.identity.oauth.server import HttpRequest, oauth_server
from campusgate.identity.pages import render
from campusgate.identity.paths import AUTHORIZE

if TYPE_CHECKING:
    from campusgate.identity.context import IdentityContext
    from campusgate.identity.models import User

__all__ = [
    "ECHO_RESPONSE_TYPE",
    "AuthorizationError",
    "AuthorizationRequest",
    "error_response",
    "issue_code",
    "validate_authorization_request",
]


#: A parameter the ClassLink-shaped endpoint (``identity/classlink/``) adds: the code's
#: redirect then also carries ``response_type=code``, as ClassLink's does.
ECHO_RESPONSE_TYPE = "cg_echo_response_type"


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request."""

    client: IdentityClient
    #: Registered (validated); the one named by the request, or the client's only one.
    redirect_uri: str
    #: ``"code"``: the only response type.
    response_type: str
    #: Requested scopes, every one allowed for the client, in request order.
    scopes: tuple[str, ...]
    state: str | None
    nonce: str | None
    #: The understood ``prompt`` values (``none`` never with another).
    prompt: frozenset[str]
    max_age: int | None
    login_hint: str | None
    ui_locales: tuple[str, ...]
    code_challenge: str | None
    #: ``S256`` (or ``plain`` for a client allowed it) when there is a challenge.
    code_challenge_method: str | None
    #: ``"query"``: the only response mode.
    response_mode: str
    #: The original parameters, to resume after login or consent.
    params: dict[str, str]


class AuthorizationError(Exception):
    """An authorization request that fails; renders itself (see the module
    docstring).  ``redirect_uri`` is set only once it is known to be registered."""

    def __init__(self, error: str, description: str, redirect_uri: str | None = None,
                 state: str | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state

    @classmethod
    def from_oauth(cls, exc: OAuth2Error) -> AuthorizationError:
        return cls(str(exc.error), str(exc.get_error_description() or ""),
                   exc.redirect_uri or None, exc.state or None)

    def response(self, ctx: IdentityContext) -> Response:
        if self.redirect_uri:
            params = [("error", self.error)]
            if self.description:
                params.append(("error_description", self.description))
            return _redirect(ctx, self.redirect_uri, params, self.state)
        return render.error_page(
            ctx, 400, "This sign-in request cannot be completed",
            "The application that sent you here made a request this sign-in service "
            f"does not accept, so you have not been sent back to it. ({self.error}: "
            f"{self.description})")


def _items(params: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """All parameters in order, repeats kept when ``params`` is a multi-dict."""
    multi = getattr(params, "multi_items", None)
    if callable(multi):
        return tuple((str(k), str(v)) for k, v in multi())
    return tuple(params.items())


async def validate_authorization_request(ctx: IdentityContext, params: Mapping[str, str]
                                         ) -> AuthorizationRequest:
    """The request ``params`` make, validated; raises :class:`AuthorizationError`."""
    http = HttpRequest("GET", ctx.url(AUTHORIZE), {}, _items(params))
    try:
        grant = oauth_server(ctx).get_consent_grant(http)
    except OAuth2Error as exc:
        raise AuthorizationError.from_oauth(exc) from None
    return _request_of(grant)


def _request_of(grant: Any) -> AuthorizationRequest:
    request = grant.request
    data: dict[str, str] = dict(request.payload.data)
    challenge = data.get("code_challenge") or None
    max_age = data.get("max_age")
    return AuthorizationRequest(
        client=request.client.config,
        redirect_uri=grant.redirect_uri,
        response_type="code",
        scopes=tuple(request.scope.split()),
        state=data.get("state") or None,
        nonce=data.get("nonce") or None,
        prompt=frozenset(p for p in (data.get("prompt") or "").split() if p in PROMPTS),
        max_age=int(max_age) if max_age else None,
        login_hint=data.get("login_hint") or None,
        ui_locales=tuple((data.get("ui_locales") or "").split()),
        code_challenge=challenge,
        code_challenge_method=(data.get("code_challenge_method") or "plain")
        if challenge else None,
        response_mode="query",
        params=data,
    )


async def issue_code(ctx: IdentityContext, request: AuthorizationRequest, user: User,
                     auth_time: int, session_id: str | None, *,
                     amr: Iterable[str] = ("pwd",)) -> Response:
    """A new code for ``user``, and the 303 that takes it to the client (RFC 6749
    4.1.2) with ``state`` and ``iss``.  ``amr``: how the user signed in (RFC 8176)."""
    code, code_hash = new_code()
    await save_code(ctx, CodeRecord(
        code_hash=code_hash, client_id=request.client.client_id,
        redirect_uri=request.redirect_uri,
        redirect_uri_given="redirect_uri" in request.params,
        scope=" ".join(request.scopes), user_id=user.id, nonce=request.nonce,
        auth_time=auth_time, code_challenge=request.code_challenge,
        code_challenge_method=request.code_challenge_method, sid=session_id,
        amr=tuple(amr), expires_at=ctx.now() + ctx.config.code_lifetime))
    echo = [("response_type", "code")] if request.params.get(ECHO_RESPONSE_TYPE) else []
    return _redirect(ctx, request.redirect_uri, [("code", code), *echo], request.state)


def error_response(ctx: IdentityContext, request: AuthorizationRequest, error: str,
                   description: str) -> Response:
    """The 303 that tells the client its request failed (RFC 6749 4.1.2.1, OIDC Core
    3.1.2.6): ``login_required``, ``consent_required``, ``access_denied``,
    ``interaction_required`` ..."""
    return AuthorizationError(error, description, request.redirect_uri,
                              request.state).response(ctx)


def _redirect(ctx: IdentityContext, redirect_uri: str, params: Sequence[tuple[str, str]],
              state: str | None) -> Response:
    params = [*params, *([("state", state)] if state else []), ("iss", ctx.issuer)]
    return Response(status_code=303, headers={
        "Location": add_params_to_uri(redirect_uri, params),
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

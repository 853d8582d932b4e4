"""The way back from a login source: ``GET {issuer}/oauth2/sources/{name}/callback``.

In order:

1. **The state** (``flow.claim``): it must name a pending sign-in of this source,
   started by this browser, not used before.  A callback with a code but no usable
   state -- a LaunchPad tile that sent the browser straight here -- is not accepted:
   the code is dropped and a fresh sign-in begins, with its own state (so nobody can
   sign a browser in with a code of their own: login CSRF).  Another browser's state
   is refused with a page.
2. **A refusal** (``error=access_denied`` ...): back to the login page, which says so.
3. **The code** for tokens (``exchange.py``), the **ID token** checked
   (``id_token.py``), and who the person is: ClassLink's ``/v2/my/info`` (and their
   classes, with the ``oneroster`` scope), an OpenID provider's claims (and userinfo
   when the ID token lacks the profile).
4. **The account** (``links.py``), a new **session** (``amr: ["fed"]``), and on to what
   the sign-in was for: the login transaction's ``/oauth2/authorize?tx=<id>``, or for a
   sign-in started outside, the app's ``initiate_login_uri`` (with ``iss``, OIDC Core
   4) or a "you are signed in" page.

Any failure is a :class:`~campusgate.identity.sources.errors.SourceError`: a page for
the person, one log line for the operator.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import Response

from campusgate.auth.id_token import verify_id_token
from campusgate.auth.jwt_verify import TokenError
from campusgate.config.identity_sources import ClassLinkSource, LoginSource
from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.pages import login, render, transaction
from campusgate.identity.pages.transaction import Transaction
from campusgate.identity.paths import AUTHORIZE
from campusgate.identity.sessions import start_session
from campusgate.identity.sources import exchange, flow
from campusgate.identity.sources.errors import (
    SourceError,
    account_refused,
    not_answering,
    untrusted,
)
from campusgate.identity.sources.links import account_for
from campusgate.identity.sources.profile import (
    Profile,
    ProfileError,
    classlink_profile,
    oidc_profile,
)
from campusgate.identity.sources.provider import Endpoints
from campusgate.identity.sources.start import begin_sign_in, callback_url, unknown_source

__all__ = ["callback"]


async def callback(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    source = ctx.config.source(request.path_params["name"])
    if source is None:
        return unknown_source(ctx)
    params = request.query_params
    pending = await flow.claim(ctx, request, source.name, params.get("state"))
    if pending == "unknown" and params.get("code"):  # a tile launch, a replayed callback
        return await begin_sign_in(ctx, request, source)
    if not isinstance(pending, flow.Pending):
        return render.error_page(
            ctx, 400, "This sign-in link cannot be used",
            "It has expired, or it was started in another browser (or one that does not "
            "keep cookies). Go back to the application and sign in again.")
    tx = await transaction.load(ctx, pending.tx) if pending.tx else None
    if pending.tx and tx is None:
        return login.expired_page(ctx)
    retry = login.login_url(ctx, tx) if tx else None
    if params.get("error") or not params.get("code"):
        return await _refused(ctx, source, tx, params.get("error") or "no code")
    try:
        user = await _sign_in(ctx, source, pending, params["code"])
    except SourceError as exc:
        return exc.response(ctx, retry)
    return await _finish(ctx, request, user, tx, pending)


async def _refused(ctx: IdentityContext, source: LoginSource, tx: Transaction | None,
                   error: str) -> Response:
    """The person said no at the source (or the source refused them)."""
    message = (f"Sign-in with {source.button} was cancelled." if error == "access_denied"
               else f"{source.button} did not sign you in. Please try again.")
    if tx is None:
        return render.error_page(ctx, 400, "You were not signed in", message)
    await transaction.save(ctx, Transaction(tx.id, tx.params, tx.expires_at, tx.sid,
                                            notice=message, username=tx.username))
    return render.see_other(login.login_url(ctx, tx))


def _secret(ctx: IdentityContext, source: LoginSource) -> str:
    if source.client_secret is not None:
        return source.client_secret
    assert source.client_secret_encrypted is not None
    return ctx.keyring.decrypt(source.client_secret_encrypted)


async def _sign_in(ctx: IdentityContext, source: LoginSource, pending: flow.Pending,
                   code: str) -> User:
    async with ctx.sources.use(source) as connection:
        endpoints = await connection.endpoints()
        tokens = await exchange.exchange_code(
            connection.http, source, endpoints, _secret(ctx, source), code,
            callback_url(ctx, source.name), pending.verifier)
        keys = connection.keys(endpoints.jwks_uri)
        try:
            claims = await verify_id_token(tokens.id_token, keys, issuer=endpoints.issuer,
                                           client_id=source.client_id, nonce=pending.nonce,
                                           now=ctx.clock())
        except TokenError as exc:
            if keys.keys is None and keys.problem:  # never had its keys: it is down
                raise not_answering(source.name, source.button, "jwks",
                                    keys.problem) from None
            raise untrusted(source.name, source.button, "id_token", str(exc)) from None
        try:
            profile = await _profile(connection.http, source, endpoints, tokens, claims)
        except ProfileError as exc:
            raise untrusted(source.name, source.button, "userinfo", str(exc)) from None
    return await account_for(ctx, source, profile)


async def _profile(http: httpx.AsyncClient, source: LoginSource, endpoints: Endpoints,
                   tokens: exchange.SourceTokens, claims: dict[str, Any]) -> Profile:
    if isinstance(source, ClassLinkSource):
        assert endpoints.userinfo is not None
        info = await exchange.get_json(http, source, "userinfo", endpoints.userinfo,
                                       tokens.access_token)
        classes = roster_info = None
        if "oneroster" in source.scopes or "full" in source.scopes:
            classes = await exchange.get_json(
                http, source, "classes", source.api_url + "/v2/oneroster/my/classes",
                tokens.access_token, required=False)
            roster_info = await exchange.get_json(
                http, source, "roster", source.api_url + "/v2/oneroster/my/info",
                tokens.access_token, required=False)
        return classlink_profile(info, classes, roster_info)
    if endpoints.userinfo and not (claims.get("email") and claims.get("name")):
        extra = await exchange.get_json(http, source, "userinfo", endpoints.userinfo,
                                        tokens.access_token, required=False)
        if isinstance(extra, dict) and extra.get("sub") == claims.get("sub"):
            claims = {**extra, **claims}  # the signed claims win (OIDC Core 5.3.2)
    profile = oidc_profile(source, claims)
    if source.email_domains:
        domain = (profile.email or "").rpartition("@")[2].lower()
        if not profile.email_verified or domain not in source.email_domains:
            raise account_refused(source.name, source.button,
                                  f"email domain {domain or '(none)'!r} is not allowed",
                                  "This account may not sign in here. Use your school "
                                  "account.")
    return profile


async def _finish(ctx: IdentityContext, request: Request, user: User,
                  tx: Transaction | None, pending: flow.Pending) -> Response:
    if tx is not None:
        resume = render.see_other(f"{ctx.url(AUTHORIZE)}?tx={tx.id}")
        session = await start_session(ctx, resume, user, ("fed",), replacing=request)
        await transaction.save(ctx, Transaction(tx.id, tx.params, tx.expires_at, session.id))
        return resume
    client = ctx.client(pending.client_id)
    response: Response
    if client is not None and client.initiate_login_uri:
        target = client.initiate_login_uri
        response = render.see_other(
            f"{target}{'&' if '?' in target else '?'}{urlencode({'iss': ctx.issuer})}")
    else:
        app = (client.name or client.client_id) if client else None
        response = render.page(ctx, "error.html", {
            "title": "You are signed in",
            "message": f"You are signed in as {user.name or user.username}."
                       + (f" Open {app} to continue." if app else
                          " You can now open your applications.")})
    await start_session(ctx, response, user, ("fed",), replacing=request)
    return response

"""The login page: local users sign in with username (or email) and password.

``GET {issuer}/oauth2/login?tx=<id>`` shows the form of a login transaction
(``pages/transaction.py``); the form posts back to the same URL.  On success a new
session starts (``identity/sessions.py``: a new cookie, never the one the browser
came with) and the browser goes back to ``/oauth2/authorize?tx=<id>`` (303).  A
failure goes back to the form (303, Post/Redirect/Get) with one message for every
cause -- unknown user, wrong password, disabled account: "Incorrect username or
password" -- and the same timing, since the directory hashes a dummy password when
there is no real one.  Failures are throttled per account and per address
(``identity/throttle.py``): past the limit the page answers 429 with ``Retry-After``
and does not look at the password.

Above the form, one button per upstream login source ("Sign in with ClassLink",
``identity.sources``): a link to ``/oauth2/sources/<name>/start?tx=<id>``
(``identity/sources/``), which signs in there and resumes the same transaction.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campusgate.identity import throttle
from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.pages import csrf, forms, render, transaction
from campusgate.identity.pages.transaction import Transaction
from campusgate.identity.paths import AUTHORIZE, LOGIN, SOURCES
from campusgate.identity.sessions import start_session

__all__ = ["INCORRECT", "expired_page", "forged_page", "login_url", "redirect_target", "routes"]

INCORRECT = "Incorrect username or password."
#: Longer inputs are not worth hashing (argon2 accepts any length: bound the work).
MAX_USERNAME = 256
MAX_PASSWORD = 1024


def routes(issuer_path: str) -> list[Route]:
    return [Route(issuer_path + LOGIN, login_page, methods=["GET", "POST"])]


def login_url(ctx: IdentityContext, tx: Transaction) -> str:
    return f"{ctx.url(LOGIN)}?tx={tx.id}"


def redirect_target(ctx: IdentityContext, params: dict[str, str]) -> list[str]:
    """Where the transaction's request will be answered: the form's last hop, which
    the page's CSP ``form-action`` must allow."""
    if params.get("redirect_uri"):
        return [params["redirect_uri"]]
    client = ctx.client(params.get("client_id"))
    return list(client.redirect_uris[:1]) if client and len(client.redirect_uris) == 1 else []


def expired_page(ctx: IdentityContext) -> Response:
    return render.error_page(
        ctx, 400, "This sign-in request has expired",
        "The link you followed is no longer valid. Go back to the application and "
        "sign in again.")


def forged_page(ctx: IdentityContext, retry: str, lang: str = "en") -> Response:
    return render.page(ctx, "error.html", {
        "title": "Your session on this page expired",
        "message": "The form could not be accepted (it expired, or was sent from another "
                   "site). Please try again.",
        "link": {"href": retry, "text": "Try again"}}, status=403, lang=lang)


def _language(tx: Transaction) -> str:
    return render.page_language(tx.params.get("ui_locales", "").split())


def _nobody() -> User:
    """Stands in for an unknown login, so that its check costs a real hash."""
    epoch = datetime.fromtimestamp(0, UTC)
    return User(id="", username="", email=None, email_verified=False, name=None,
                given_name=None, family_name=None, claims={}, disabled=True,
                created_at=epoch, updated_at=epoch)


async def login_page(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    tx = await transaction.load(ctx, request.query_params.get("tx"))
    if tx is None:
        return expired_page(ctx)
    if request.method == "POST":
        return await _sign_in(ctx, request, tx)
    if tx.notice is not None:  # shown once
        await transaction.save(ctx, Transaction(tx.id, tx.params, tx.expires_at, tx.sid))
    return _form(ctx, request, tx, error=tx.notice,
                 username=tx.username or tx.params.get("login_hint", ""))


def _form(ctx: IdentityContext, request: Request, tx: Transaction, *, error: str | None,
          username: str, status: int = 200, headers: dict[str, str] | None = None
          ) -> Response:
    token, fresh = csrf.form_token(ctx, request, f"login:{tx.id}")
    client = ctx.client(tx.params.get("client_id"))
    return render.page(ctx, "login.html", {
        "action": login_url(ctx, tx), "csrf_token": token, "error": error,
        "username": username[:MAX_USERNAME],
        "client_name": (client.name or client.client_id) if client else None,
        "sources": [{"href": f"{ctx.url(SOURCES)}/{source.name}/start?tx={tx.id}",
                     "label": source.button} for source in ctx.config.sources],
    }, status=status, csrf_cookie=fresh, lang=_language(tx),
        form_targets=redirect_target(ctx, tx.params), headers=headers)


async def _sign_in(ctx: IdentityContext, request: Request, tx: Transaction) -> Response:
    form = await forms.read_form(request)
    if not csrf.valid(ctx, request, form.get(csrf.CSRF_FIELD), f"login:{tx.id}"):
        return forged_page(ctx, login_url(ctx, tx), _language(tx))
    username = form.get("username")
    password = form.get("password")
    login = (username or "").strip()
    secret = password or ""
    address = request.client.host if request.client else None

    lockout = await throttle.check(ctx, login, address)
    if lockout is not None:
        minutes = max(1, math.ceil(lockout.retry_after / 60))
        return _form(ctx, request, tx, status=429, username=login,
                     headers={"Retry-After": str(lockout.retry_after)},
                     error=f"Too many failed sign-in attempts. Try again in {minutes} "
                           f"minute{'s' if minutes > 1 else ''}.")

    user = None
    if login and len(login) <= MAX_USERNAME and len(secret) <= MAX_PASSWORD:
        user = await ctx.directory.find_user(login)
    verified = await ctx.directory.verify_password(user or _nobody(), secret[:MAX_PASSWORD])
    if user is None or user.disabled or not verified or not secret:
        await throttle.record_failure(ctx, login, address)
        await transaction.save(ctx, Transaction(tx.id, tx.params, tx.expires_at, tx.sid,
                                                notice=INCORRECT, username=login))
        return render.see_other(login_url(ctx, tx))

    await throttle.clear_account(ctx, login)
    response = render.see_other(f"{ctx.url(AUTHORIZE)}?tx={tx.id}")
    session = await start_session(ctx, response, user, ("pwd",), replacing=request)
    await transaction.save(ctx, Transaction(tx.id, tx.params, tx.expires_at, session.id))
    return response

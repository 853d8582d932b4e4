"""ClassLink's authorization request: ``GET {issuer}/oauth2/v2/auth``.

ClassLink's parameters are OAuth's (``client_id``, ``redirect_uri``,
``response_type=code``, ``state``) except ``scope``, whose values (``profile``,
``email``, ``oneroster``, ``openid``, ``full``) become campusgate scopes through the
sandbox's scope map (``config/classlink_sandbox.py``; ``openid`` always, since
ClassLink always answers with an ID token).  The request is then sent on (303) to
campusgate's own authorization endpoint, unchanged otherwise: the client's allowed
scopes, exact redirect URI match, PKCE, login, consent and sessions all apply as for
any request, and so do its errors (``error=access_denied`` when the user declines).
The translated request carries ``cg_echo_response_type``, so that the redirect that
brings the code also carries ``response_type=code``, as ClassLink's does.

ClassLink's official libraries send neither ``state`` nor PKCE; a confidential
client may do without both here too (RFC 9700 recommends them: send them if you can).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campusgate.config.classlink_sandbox import ClassLinkSandbox
from campusgate.identity.classlink.sandbox import not_found, sandbox_of
from campusgate.identity.context import IdentityContext
from campusgate.identity.oauth.authorization import ECHO_RESPONSE_TYPE
from campusgate.identity.pages import render
from campusgate.identity.paths import AUTHORIZE

__all__ = ["CLASSLINK_AUTHORIZE", "routes", "translate_authorization"]

CLASSLINK_AUTHORIZE = "/oauth2/v2/auth"


def routes(issuer_path: str) -> list[Route]:
    return [Route(issuer_path + CLASSLINK_AUTHORIZE, classlink_authorize, methods=["GET"])]


def translate_authorization(params: Iterable[tuple[str, str]], sandbox: ClassLinkSandbox
                            ) -> list[tuple[str, str]]:
    """ClassLink's authorization parameters as campusgate's: every ``scope`` translated
    (repeats kept, so that the standard endpoint refuses them), the echo marker added."""
    translated = [(name, sandbox.translate_scope(value) if name == "scope" else value)
                  for name, value in params if name != ECHO_RESPONSE_TYPE]
    return [*translated, (ECHO_RESPONSE_TYPE, "1")]


async def classlink_authorize(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    sandbox = sandbox_of(ctx)
    if sandbox is None:
        return not_found()
    query = urlencode(translate_authorization(request.query_params.multi_items(), sandbox))
    return render.see_other(f"{ctx.url(AUTHORIZE)}?{query}")

"""ClassLink's token request: ``POST {issuer}/oauth2/v2/token``.

ClassLink's official libraries post ``code``, ``client_id`` and ``client_secret`` --
no ``grant_type``, no ``redirect_uri`` -- and read ``access_token`` (and
``id_token``) from ``{access_token, token_type: "Bearer", response_type: "code",
id_token}``.  This endpoint accepts that form and the standard one, and makes the
standard request of it (:func:`standard_form`, no I/O):

- no ``grant_type``: ``authorization_code``;
- no ``redirect_uri``: the one the code was sent to (ClassLink binds a code to its
  client, not to a redirect URI the token request repeats);
- ``client_secret`` in the form from a client registered with
  ``client_secret_basic``: moved into the ``Authorization: Basic`` header it would
  have sent -- still one authentication mechanism, checked as ever.

Then the real grant runs (Authlib's, as at ``/oauth2/token``: single-use codes, client
authentication, PKCE when the request used it) and a success is answered in
ClassLink's shape plus ``expires_in`` (:func:`classlink_body`).  The ID token is
campusgate's.  Errors are RFC 6749 5.2's JSON, never a stack trace; a store outage is
503 ``temporarily_unavailable``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from authlib.oauth2.rfc6749.util import (  # type: ignore[import-untyped]
    extract_basic_authorization,
)
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from campusgate.auth.client_basic import basic_authorization
from campusgate.identity.classlink.sandbox import not_found, sandbox_of
from campusgate.identity.context import IdentityContext
from campusgate.identity.oauth.grants.authorization_code import CODE_KIND
from campusgate.identity.oauth.server import HttpRequest, read_form
from campusgate.identity.oauth.token_endpoint import token_response
from campusgate.identity.tokens import token_digest

__all__ = ["CLASSLINK_TOKEN", "classlink_body", "routes", "standard_form"]

CLASSLINK_TOKEN = "/oauth2/v2/token"
#: What a ClassLink token response holds (``expires_in`` is campusgate's addition).
_ANSWER = ("access_token", "token_type", "id_token", "expires_in")


def routes(issuer_path: str) -> list[Route]:
    return [Route(issuer_path + CLASSLINK_TOKEN, classlink_token, methods=["POST"])]


def standard_form(http: HttpRequest, *, code_redirect_uri: str | None,
                  registered_method: str | None) -> HttpRequest:
    """``http`` as a standard token request (see the module docstring).

    ``code_redirect_uri``: where the request's code was sent, if it names one issued
    to the client it names; ``registered_method``: that client's
    ``token_endpoint_auth_method``."""
    params = list(http.params)
    names = {name for name, _ in params}
    headers = MutableHeaders(headers=dict(http.headers))  # case-insensitive, as Authlib needs
    if "grant_type" not in names:
        params.append(("grant_type", "authorization_code"))
    if "redirect_uri" not in names and code_redirect_uri is not None:
        params.append(("redirect_uri", code_redirect_uri))
    form = dict(params)
    if registered_method == "client_secret_basic" and "client_secret" in form \
            and "client_id" in form and "authorization" not in headers:
        headers["Authorization"] = basic_authorization(form["client_id"], form["client_secret"])
        params = [(name, value) for name, value in params if name != "client_secret"]
    return replace(http, headers=headers, params=tuple(params))


def classlink_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A standard token response (RFC 6749 5.1) in ClassLink's shape."""
    answer = {name: body[name] for name in _ANSWER if name in body}
    answer["token_type"] = "Bearer"
    answer["response_type"] = "code"
    return answer


def _client_id(http: HttpRequest) -> str | None:
    """The client the request names: in the form, or in its Basic credentials."""
    named = dict(http.params).get("client_id")
    if named:
        return named
    basic, _ = extract_basic_authorization(http.headers)
    return basic if isinstance(basic, str) else None


async def _code_redirect_uri(ctx: IdentityContext, http: HttpRequest) -> str | None:
    """Where the request's code was sent, when it was issued to the client named."""
    code, client_id = dict(http.params).get("code"), _client_id(http)
    if not code or not client_id:
        return None
    record = await ctx.ephemeral.get(CODE_KIND, token_digest(code))
    if record is None or record.get("client_id") != client_id:
        return None
    uri = record.get("redirect_uri")
    return uri if isinstance(uri, str) else None


async def _read(ctx: IdentityContext, request: Request) -> HttpRequest:
    """The request, read and made standard."""
    http = await read_form(request, ctx.url(CLASSLINK_TOKEN))
    client = ctx.client(_client_id(http))
    return standard_form(
        http, code_redirect_uri=await _code_redirect_uri(ctx, http),
        registered_method=client.token_endpoint_auth_method if client else None)


async def classlink_token(request: Request) -> Response:
    ctx: IdentityContext = request.app.state.identity
    if sandbox_of(ctx) is None:
        return not_found()
    response = await token_response(ctx, _read(ctx, request))
    if response.status_code != 200:
        return response
    body = json.loads(bytes(response.body))
    return JSONResponse(classlink_body(body), headers={"Cache-Control": "no-store",
                                                       "Pragma": "no-cache"})

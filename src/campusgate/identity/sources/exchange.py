"""Talking to a login source after it sent the browser back: the code for tokens,
then who the person is.

The token request is a confidential client's (RFC 6749 4.1.3 with RFC 7636's
``code_verifier``).  ClassLink's own libraries send ``code``, ``client_id`` and
``client_secret`` in the form body and no ``grant_type``; campusgate sends those plus
the standard ``grant_type``, ``redirect_uri`` and ``code_verifier``.  An OpenID
provider gets ``client_secret_basic`` unless its discovery document offers only
``client_secret_post``.  The request is :mod:`campusgate.auth.token_request`'s, shared
with the ``sso`` plugin.  Every call goes through :func:`campusgate.auth.retry.send`
(backoff with jitter on 429, 5xx and timeouts), on the source's long-lived client
(``connections.py``).  Tokens stay in memory for the length of the callback and are
never logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from campusgate.auth import retry
from campusgate.auth.token_request import code_exchange_request
from campusgate.config.identity_sources import LoginSource
from campusgate.identity.sources.errors import not_answering, untrusted
from campusgate.identity.sources.provider import Endpoints

__all__ = ["SourceTokens", "exchange_code", "get_json"]

#: Largest JSON answer accepted from a source.
MAX_ANSWER = 1024 * 1024


@dataclass(frozen=True)
class SourceTokens:
    access_token: str
    id_token: str

    def __repr__(self) -> str:  # never in a log or traceback
        return "SourceTokens(...)"


def _json(source: LoginSource, step: str, answer: httpx.Response) -> Any:
    try:
        return json.loads(answer.content)
    except ValueError:
        raise untrusted(source.name, source.button, step,
                        f"the answer ({answer.status_code}) is not JSON") from None


async def exchange_code(http: httpx.AsyncClient, source: LoginSource, endpoints: Endpoints,
                        secret: str, code: str, redirect_uri: str,
                        verifier: str) -> SourceTokens:
    """Redeem ``code`` at the source's token endpoint, with the source's client."""
    request = code_exchange_request(
        http, endpoints.token, client_id=source.client_id, client_secret=secret,
        auth_method=endpoints.client_auth, code=code, redirect_uri=redirect_uri,
        verifier=verifier)
    try:
        answer = await retry.send(http, request, limit=MAX_ANSWER)
    except retry.Unavailable as exc:
        raise not_answering(source.name, source.button, "token", str(exc)) from None
    except retry.AnswerTooLarge:
        raise untrusted(source.name, source.button, "token", "the answer is too large") from None
    body = _json(source, "token", answer)
    if answer.status_code != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        raise untrusted(source.name, source.button, "token",
                        f"the token endpoint answered {answer.status_code}"
                        + (f" ({str(error)[:100]})" if error else ""))
    access, id_token = body.get("access_token"), body.get("id_token")
    if not isinstance(access, str) or not access:
        raise untrusted(source.name, source.button, "token", "no access_token in the answer")
    if not isinstance(id_token, str) or not id_token:
        raise untrusted(source.name, source.button, "token", "no id_token in the answer")
    if str(body.get("token_type", "Bearer")).lower() != "bearer":
        raise untrusted(source.name, source.button, "token",
                        f"token_type {str(body.get('token_type'))[:20]!r} is not Bearer")
    return SourceTokens(access, id_token)


async def get_json(http: httpx.AsyncClient, source: LoginSource, step: str, url: str,
                   access_token: str, *, required: bool = True) -> Any:
    """GET ``url`` with the bearer token, with the source's client.  ``required=False``:
    a failure is None (the answer only adds to what is known), not an error."""
    try:
        answer = await retry.send(http, http.build_request(
            "GET", url, headers={"Authorization": f"Bearer {access_token}",
                                 "Accept": "application/json"}), limit=MAX_ANSWER)
    except (retry.Unavailable, retry.AnswerTooLarge) as exc:
        if not required:
            return None
        if isinstance(exc, retry.AnswerTooLarge):
            raise untrusted(source.name, source.button, step,
                            "the answer is too large") from None
        raise not_answering(source.name, source.button, step, str(exc)) from None
    if answer.status_code != 200:
        if not required:
            return None
        raise untrusted(source.name, source.button, step,
                        f"{url.split('?')[0]} answered {answer.status_code}")
    if not required:
        try:
            return json.loads(answer.content)
        except ValueError:
            return None
    return _json(source, step, answer)

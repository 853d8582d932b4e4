"""The token request of campusgate's own OpenID clients: an authorization code for
tokens (RFC 6749 section 4.1.3, with RFC 7636 section 4.5's ``code_verifier``), for
every relying party in campusgate -- the ``sso`` plugin and the login sources.

The client authenticates as RFC 6749 section 2.3.1 has it: ``client_secret_basic``
(the default; :mod:`campusgate.auth.client_basic`) or, when the provider offers only
that, ``client_secret_post`` -- ``client_id`` and ``client_secret`` in the form, as
ClassLink's own libraries send them.  The request is built, not sent: each caller
sends it through :func:`campusgate.auth.retry.send` and reads the answer its own way.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from campusgate.auth.client_basic import basic_authorization

__all__ = ["CLIENT_SECRET_BASIC", "CLIENT_SECRET_POST", "code_exchange_request"]

CLIENT_SECRET_BASIC = "client_secret_basic"
CLIENT_SECRET_POST = "client_secret_post"


def code_exchange_request(client: httpx.AsyncClient, token_endpoint: str, *, client_id: str,
                          client_secret: str, auth_method: str, code: str,
                          redirect_uri: str, verifier: str,
                          timeout: float | None = None) -> httpx.Request:
    """The POST to ``token_endpoint`` that redeems ``code``; ``auth_method`` is
    :data:`CLIENT_SECRET_POST` or (anything else) :data:`CLIENT_SECRET_BASIC`;
    ``timeout`` (seconds) overrides the client's own."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier}
    headers = {"accept": "application/json",
               "content-type": "application/x-www-form-urlencoded"}
    if auth_method == CLIENT_SECRET_POST:
        form.update(client_id=client_id, client_secret=client_secret)
    else:
        headers["authorization"] = basic_authorization(client_id, client_secret)
    return client.build_request("POST", token_endpoint, headers=headers,
                                content=urlencode(form).encode(),
                                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None
                                else timeout)

"""Reading an OpenID provider's discovery document (OpenID Connect Discovery 1.0), for
every relying party in campusgate: the ``sso`` plugin and the login sources.

- :func:`fetch_document` GETs the document through :func:`campusgate.auth.retry.send`
  (at most :data:`MAX_DOCUMENT` bytes; it must be a JSON object answered with 200).
- :func:`provider_urls` checks it: ``issuer`` must be the configured one exactly
  (section 4.3: a document that names another issuer is refused, so a compromised
  discovery URL cannot swap in another provider's tokens), and each endpoint the
  caller needs must be an http(s) URL.
- :func:`token_auth_method` is how to authenticate at the token endpoint:
  ``client_secret_basic`` (RFC 6749 2.3.1's default) unless the provider offers only
  ``client_secret_post``.

A document that cannot be used raises :class:`DiscoveryError` (a ValueError whose
message is fit for the operator's log); a provider that does not answer raises
:class:`~campusgate.auth.retry.Unavailable`.  What each caller keeps of the document,
and for how long, is its own business.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx

from campusgate.auth import retry

__all__ = ["MAX_DOCUMENT", "DiscoveryError", "fetch_document", "provider_urls",
           "token_auth_method"]

#: Largest discovery document accepted.
MAX_DOCUMENT = 256 * 1024
#: What a code-flow relying party needs.
CODE_FLOW = ("authorization_endpoint", "token_endpoint", "jwks_uri")


class DiscoveryError(ValueError):
    """The discovery document cannot be used; the message says why."""


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def provider_urls(document: Any, issuer: str | None,
                  required: Iterable[str] = CODE_FLOW) -> dict[str, str]:
    """The endpoints ``document`` names: each of ``required`` (else DiscoveryError),
    and ``userinfo_endpoint``/``end_session_endpoint`` when they are URLs.
    ``issuer=None`` skips the issuer check (a preset that takes only some URLs from
    the document, like ClassLink's key set)."""
    if not isinstance(document, dict):
        raise DiscoveryError("the discovery document is not a JSON object")
    if issuer is not None and document.get("issuer") != issuer:
        raise DiscoveryError(f"the discovery document names issuer "
                             f"{document.get('issuer')!r}, not {issuer!r}")
    urls = {}
    for name in required:
        if not _is_url(document.get(name)):
            raise DiscoveryError(f"the discovery document has no usable {name}")
        urls[name] = document[name]
    for name in ("userinfo_endpoint", "end_session_endpoint"):
        if name not in urls and _is_url(document.get(name)):
            urls[name] = document[name]
    return urls


def token_auth_method(document: dict[str, Any]) -> str:
    """``client_secret_post`` when the provider offers it and not ``_basic``, else
    ``client_secret_basic``."""
    methods = document.get("token_endpoint_auth_methods_supported")
    post_only = (isinstance(methods, list) and "client_secret_post" in methods
                 and "client_secret_basic" not in methods)
    return "client_secret_post" if post_only else "client_secret_basic"


async def fetch_document(client: httpx.AsyncClient, url: str, *, time_limit: float,
                         policy: retry.RetryPolicy | None = None) -> dict[str, Any]:
    """The discovery document at ``url``, a JSON object (DiscoveryError otherwise);
    Unavailable when the provider does not answer usefully after ``policy``'s tries
    (each within ``time_limit`` seconds)."""
    request = client.build_request("GET", url, headers={"accept": "application/json"},
                                   timeout=time_limit)
    try:
        answer = await retry.send(client, request, policy or retry.RetryPolicy(),
                                  limit=MAX_DOCUMENT)
    except retry.AnswerTooLarge:
        raise DiscoveryError("the discovery document is too large") from None
    if answer.status_code != 200:
        raise DiscoveryError(f"the discovery document answered {answer.status_code}")
    try:
        document = json.loads(answer.content)
    except (ValueError, UnicodeDecodeError):
        raise DiscoveryError("the discovery document is not JSON") from None
    if not isinstance(document, dict):
        raise DiscoveryError("the discovery document is not a JSON object")
    return document

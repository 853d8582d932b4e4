"""Where a login source's endpoints are, and the keys its ID tokens are signed with.

ClassLink is a preset: authorization ``{launchpad}/oauth2/v2/auth``, token
``{launchpad}/oauth2/v2/token``, user info ``{api}/v2/my/info``; only its key set URL
comes from LaunchPad's discovery document.  An OpenID Connect source is read
entirely from its discovery document (OIDC Discovery 4), whose ``issuer`` must be
the configured one exactly (section 4.3: a document that names another issuer is
refused, so a compromised discovery URL cannot swap in another provider's tokens).

:class:`SourceDirectory` keeps, per worker, each source's endpoints (for
:data:`DISCOVERY_MAX_AGE`) and one :class:`~campusgate.auth.jwks.JwksCache` per key
set URL; it lives on the identity app's state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from campusgate.auth.jwks import JwksCache
from campusgate.config.identity_sources import ClassLinkSource, LoginSource
from campusgate.identity.sources import retry
from campusgate.identity.sources.errors import not_answering, untrusted

__all__ = ["DISCOVERY_MAX_AGE", "Endpoints", "SourceDirectory", "endpoints_from_discovery"]

#: Discovery documents are read again after this many seconds.
DISCOVERY_MAX_AGE = 3600.0
#: Largest discovery document accepted.
MAX_DOCUMENT = 256 * 1024


@dataclass(frozen=True)
class Endpoints:
    """What campusgate needs to know to be a source's client."""

    issuer: str
    authorization: str
    token: str
    jwks_uri: str
    userinfo: str | None
    #: ``client_secret_basic`` or ``client_secret_post``.
    client_auth: str


def endpoints_from_discovery(source: LoginSource, document: Any) -> Endpoints:
    """The endpoints a discovery document gives ``source`` (ValueError when it cannot
    be used)."""
    if not isinstance(document, dict):
        raise ValueError("the discovery document is not a JSON object")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
        raise ValueError("the discovery document has no jwks_uri")
    if isinstance(source, ClassLinkSource):
        return Endpoints(issuer=source.issuer,
                         authorization=source.launchpad_url + "/oauth2/v2/auth",
                         token=source.launchpad_url + "/oauth2/v2/token",
                         jwks_uri=jwks_uri, userinfo=source.api_url + "/v2/my/info",
                         client_auth="client_secret_post")
    if document.get("issuer") != source.issuer:
        raise ValueError(f"the discovery document names issuer {document.get('issuer')!r}, "
                         f"not {source.issuer!r}")
    urls = {}
    for name in ("authorization_endpoint", "token_endpoint"):
        value = document.get(name)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise ValueError(f"the discovery document has no {name}")
        urls[name] = value
    userinfo = document.get("userinfo_endpoint")
    methods = document.get("token_endpoint_auth_methods_supported") or [
        "client_secret_basic"]
    auth = ("client_secret_basic" if "client_secret_basic" in methods
            else "client_secret_post")
    return Endpoints(issuer=source.issuer, authorization=urls["authorization_endpoint"],
                     token=urls["token_endpoint"], jwks_uri=jwks_uri,
                     userinfo=userinfo if isinstance(userinfo, str) else None,
                     client_auth=auth)


def _discovery_url(source: LoginSource) -> str:
    if isinstance(source, ClassLinkSource):
        return source.launchpad_url + "/.well-known/openid-configuration"
    return source.discovery


class SourceDirectory:
    """Per worker: the sources' endpoints and key sets, fetched when first needed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._endpoints: dict[tuple[str, str], tuple[float, Endpoints]] = {}
        self._keys: dict[str, JwksCache] = {}

    async def endpoints(self, source: LoginSource) -> Endpoints:
        """``source``'s endpoints (SourceError when its discovery document cannot be
        had or used)."""
        url = _discovery_url(source)
        cached = self._endpoints.get((source.name, url))
        if cached is not None and self.clock() - cached[0] < DISCOVERY_MAX_AGE:
            return cached[1]
        try:
            async with httpx.AsyncClient(timeout=source.timeout) as client:
                answer = await retry.send(client, client.build_request(
                    "GET", url, headers={"Accept": "application/json"}))
        except retry.SourceUnavailable as exc:
            raise not_answering(source.name, source.button, "discovery", str(exc)) from None
        try:
            if answer.status_code != 200:
                raise ValueError(f"the discovery document answered {answer.status_code}")
            if len(answer.content) > MAX_DOCUMENT:
                raise ValueError("the discovery document is too large")
            found = endpoints_from_discovery(source, json.loads(answer.content))
        except ValueError as exc:
            raise untrusted(source.name, source.button, "discovery", str(exc)) from None
        self._endpoints[(source.name, url)] = (self.clock(), found)
        return found

    def keys(self, jwks_uri: str) -> JwksCache:
        """The (shared) key set at ``jwks_uri``."""
        cache = self._keys.get(jwks_uri)
        if cache is None:
            cache = self._keys[jwks_uri] = JwksCache(jwks_uri)
        return cache

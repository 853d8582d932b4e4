"""Where a login source's endpoints are, and the keys its ID tokens are signed with.

ClassLink is a preset: authorization ``{launchpad}/oauth2/v2/auth``, token
``{launchpad}/oauth2/v2/token``, user info ``{api}/v2/my/info``; only its key set URL
comes from LaunchPad's discovery document.  An OpenID Connect source is read
entirely from its discovery document (OIDC Discovery 4), whose ``issuer`` must be
the configured one exactly (section 4.3); the fetch and the checks are
:mod:`campusgate.auth.discovery`'s, shared with the ``sso`` plugin.

:class:`SourceDirectory` keeps, per worker, each source's endpoints (for
:data:`DISCOVERY_MAX_AGE`) and one :class:`~campusgate.auth.jwks.JwksCache` per key
set URL; it lives on the identity app's state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from campusgate.auth.discovery import (
    DiscoveryError,
    fetch_document,
    provider_urls,
    token_auth_method,
)
from campusgate.auth.jwks import JwksCache
from campusgate.auth.retry import Unavailable
from campusgate.config.identity_sources import ClassLinkSource, LoginSource
from campusgate.identity.sources.errors import not_answering, untrusted

__all__ = ["DISCOVERY_MAX_AGE", "Endpoints", "SourceDirectory", "endpoints_from_discovery"]

#: Discovery documents are read again after this many seconds.
DISCOVERY_MAX_AGE = 3600.0


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
    """The endpoints a discovery document gives ``source`` (DiscoveryError, a
    ValueError, when it cannot be used)."""
    if isinstance(source, ClassLinkSource):
        urls = provider_urls(document, None, required=("jwks_uri",))
        return Endpoints(issuer=source.issuer,
                         authorization=source.launchpad_url + "/oauth2/v2/auth",
                         token=source.launchpad_url + "/oauth2/v2/token",
                         jwks_uri=urls["jwks_uri"], userinfo=source.api_url + "/v2/my/info",
                         client_auth="client_secret_post")
    urls = provider_urls(document, source.issuer)
    return Endpoints(issuer=source.issuer, authorization=urls["authorization_endpoint"],
                     token=urls["token_endpoint"], jwks_uri=urls["jwks_uri"],
                     userinfo=urls.get("userinfo_endpoint"),
                     client_auth=token_auth_method(document))


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
            async with httpx.AsyncClient() as client:
                document = await fetch_document(client, url, time_limit=source.timeout)
            found = endpoints_from_discovery(source, document)
        except Unavailable as exc:
            raise not_answering(source.name, source.button, "discovery", str(exc)) from None
        except DiscoveryError as exc:
            raise untrusted(source.name, source.button, "discovery", str(exc)) from None
        self._endpoints[(source.name, url)] = (self.clock(), found)
        return found

    def keys(self, jwks_uri: str) -> JwksCache:
        """The (shared) key set at ``jwks_uri``."""
        cache = self._keys.get(jwks_uri)
        if cache is None:
            cache = self._keys[jwks_uri] = JwksCache(jwks_uri)
        return cache

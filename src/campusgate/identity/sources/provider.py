"""Where a login source's endpoints are, its key set's among them.

ClassLink is a preset: authorization ``{launchpad}/oauth2/v2/auth``, token
``{launchpad}/oauth2/v2/token``, user info ``{api}/v2/my/info``; only its key set URL
comes from LaunchPad's discovery document.  An OpenID Connect source is read
entirely from its discovery document (OIDC Discovery 4), whose ``issuer`` must be
the configured one exactly (section 4.3); the fetch and the checks are
:mod:`campusgate.auth.discovery`'s, shared with the ``sso`` plugin.  No I/O here:
``connections.py`` reads the document and keeps what this module makes of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from campusgate.auth.discovery import provider_urls, token_auth_method
from campusgate.auth.token_request import CLIENT_SECRET_POST
from campusgate.config.identity_sources import ClassLinkSource, LoginSource

__all__ = ["Endpoints", "discovery_url", "endpoints_from_discovery"]


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
                         client_auth=CLIENT_SECRET_POST)
    urls = provider_urls(document, source.issuer)
    return Endpoints(issuer=source.issuer, authorization=urls["authorization_endpoint"],
                     token=urls["token_endpoint"], jwks_uri=urls["jwks_uri"],
                     userinfo=urls.get("userinfo_endpoint"),
                     client_auth=token_auth_method(document))


def discovery_url(source: LoginSource) -> str:
    """Where ``source``'s discovery document is."""
    if isinstance(source, ClassLinkSource):
        return source.launchpad_url + "/.well-known/openid-configuration"
    return source.discovery

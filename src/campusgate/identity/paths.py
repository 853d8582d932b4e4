"""Where the identity endpoints live, relative to the issuer URL.

Every URL the provider advertises is the issuer plus one of these paths; the OpenID
discovery document sits at ``issuer + /.well-known/openid-configuration`` (OIDC
Discovery 4) and the RFC 8414 metadata at ``/.well-known/oauth-authorization-server``
inserted before the issuer's path (RFC 8414 3).
"""

from __future__ import annotations

__all__ = [
    "AS_METADATA",
    "AUTHORIZE",
    "CONSENT",
    "INTROSPECT",
    "JWKS",
    "LOGIN",
    "LOGOUT",
    "OIDC_DISCOVERY",
    "REVOKE",
    "SOURCES",
    "TOKEN",
    "USERINFO",
    "route_paths",
]

AUTHORIZE = "/oauth2/authorize"
TOKEN = "/oauth2/token"
REVOKE = "/oauth2/revoke"
INTROSPECT = "/oauth2/introspect"
USERINFO = "/oauth2/userinfo"
JWKS = "/oauth2/jwks"
#: RP-initiated logout (OIDC RP-Initiated Logout 1.0: ``end_session_endpoint``).
LOGOUT = "/oauth2/logout"
LOGIN = "/oauth2/login"
CONSENT = "/oauth2/consent"
#: Upstream login sources: ``{SOURCES}/{name}/start|launch|callback``
#: (``identity/sources/``).
SOURCES = "/oauth2/sources"
OIDC_DISCOVERY = "/.well-known/openid-configuration"
AS_METADATA = "/.well-known/oauth-authorization-server"


def route_paths(issuer_path: str, *, classlink_sandbox: bool = False) -> list[str]:
    """The proxy route prefixes that lead to the identity app for this issuer path;
    with the ClassLink sandbox, also ClassLink's data API (``/v2/my``,
    ``/v2/oneroster``; its ``/oauth2/v2`` paths are under ``/oauth2`` already)."""
    sandbox = [f"{issuer_path}/v2/my", f"{issuer_path}/v2/oneroster"] \
        if classlink_sandbox else []
    return [f"{issuer_path}/oauth2", f"{issuer_path}{OIDC_DISCOVERY}",
            f"{AS_METADATA}{issuer_path}", *sandbox]

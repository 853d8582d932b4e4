"""The authorization request of campusgate's own OpenID clients (OpenID Connect Core
3.1.2.1 with RFC 7636 section 4.3): where to send the browser to sign in.

Always the code flow with ``state`` (RFC 6749 10.12: the callback's CSRF token),
``nonce`` (OIDC Core 3.1.2.1: ID token replay) and a PKCE S256 challenge (RFC 9700
2.1.1).  The ``sso`` plugin and the login sources keep those values differently (a
sealed cookie, a server-side record); the request they send is this one.  ClassLink's
``/oauth2/v2/auth`` takes the same standard parameters.  No I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode

__all__ = ["authorization_url"]


def authorization_url(endpoint: str, *, client_id: str, redirect_uri: str,
                      scopes: Sequence[str], state: str, nonce: str, challenge: str) -> str:
    """``endpoint`` with the request in its query (after any query it already has)."""
    query = urlencode({"response_type": "code", "client_id": client_id,
                       "redirect_uri": redirect_uri, "scope": " ".join(scopes),
                       "state": state, "nonce": nonce, "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

"""PKCE for campusgate's own clients (RFC 7636): a fresh verifier and its S256 challenge.

RFC 9700 section 2.1.1 asks every client, confidential ones too, to use PKCE with
``S256``; the ``sso`` plugin and the login sources both do.  No I/O.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

__all__ = ["challenge", "pkce_pair"]


def challenge(verifier: str) -> str:
    """The S256 code challenge of ``verifier`` (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_pair() -> tuple[str, str]:
    """A code verifier (64 characters of 48 random bytes, section 4.1) and its S256
    challenge."""
    verifier = secrets.token_urlsafe(48)
    return verifier, challenge(verifier)

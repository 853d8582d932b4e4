"""What the identity provider keeps about people and authorizations: plain values.

The directory (``identity/directory.py``) reads and writes these; the endpoints pass
them around.  They are frozen: a change is a new value from the directory.  Secrets
never appear here in the clear: a user carries only an argon2id ``password_hash``
(left out of ``repr``, never serialised), a refresh token only its SHA-256.  A
:class:`SigningKey` holds its private JWK decrypted, in memory only; the store keeps
it encrypted with the installation keyring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Consent", "Grant", "RefreshToken", "SigningKey", "User"]


@dataclass(frozen=True)
class User:
    """A local account: someone who signs in at the login page."""

    #: uuid4 string; the OIDC ``sub``.
    id: str
    #: Unique, case-insensitive (stored lowercased).
    username: str
    email: str | None
    email_verified: bool
    name: str | None
    given_name: str | None
    family_name: str | None
    #: Other OIDC Core 5.1 claims (locale, picture, phone_number, ...) and
    #: operator-defined ones.
    claims: dict[str, Any]
    disabled: bool
    created_at: datetime
    updated_at: datetime
    #: argon2id; never serialised.
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Consent:
    """Scopes a user allowed a client to have; asked again only for new scopes."""

    user_id: str
    client_id: str
    scopes: frozenset[str]
    granted_at: datetime


@dataclass(frozen=True)
class Grant:
    """One authorization: the family of refresh tokens descending from one code (or
    one client_credentials grant).  Revoking it revokes every token of the family."""

    id: str
    client_id: str
    user_id: str | None
    scope: str
    auth_time: int | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class RefreshToken:
    """A refresh token's record (found by the token's SHA-256; times in epoch seconds)."""

    token_hash: str
    grant_id: str
    client_id: str
    user_id: str | None
    scope: str
    issued_at: int
    expires_at: int
    used_at: int | None
    #: The token itself or its grant was revoked.
    revoked: bool


@dataclass(frozen=True)
class SigningKey:
    """A key that signs ID tokens and JWT access tokens."""

    kid: str
    #: ``"RS256"`` or ``"ES256"``.
    alg: str
    #: Decrypted, in memory only.
    private_jwk: dict[str, Any] = field(repr=False)
    #: Epoch seconds.
    created_at: int
    #: No longer used to sign after this.
    retired_at: int | None
    #: Dropped from the JWKS after this.
    expires_at: int | None

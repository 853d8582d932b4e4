"""Admin tokens: generation and hashing (pure).

A token is ``cgadm_`` followed by 43 characters of ``secrets.token_urlsafe(32)``:
256 random bits.  The store keeps only ``sha256(token)``.  A slow password hash
(argon2, bcrypt) protects *low-entropy* secrets from guessing after a database leak;
a 256-bit random token cannot be guessed whatever the hash speed, so a fast hash is
as safe here and keeps verification cheap on every admin request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["TOKEN_PREFIX", "hash_token", "hashes_equal", "new_token", "visible_prefix"]

TOKEN_PREFIX = "cgadm_"
_VISIBLE_CHARS = 4


def new_token() -> str:
    """A fresh admin token (plaintext; shown once, never stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Hex SHA-256 of a token, as stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def visible_prefix(token: str) -> str:
    """The part of a token safe to show and store, e.g. ``cgadm_Ab3x``."""
    return token[: len(TOKEN_PREFIX) + _VISIBLE_CHARS]


def hashes_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two hex digests."""
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))

"""The tokens campusgate issues, and how it recognises them again.

- **Access tokens** are, per client (``access_token_format``), either JWTs in the
  RFC 9068 profile (header ``typ: at+jwt`` and ``kid``; claims ``iss sub aud exp iat
  jti client_id scope``, ``auth_time`` for users, ``gid`` the grant they belong to)
  signed RS256 with the provider's current key, or opaque strings (``cgat_`` + 256
  random bits) whose :class:`AccessToken` record lives in the ephemeral store (kind
  ``at``, keyed by the token's SHA-256) until it expires.
- **ID tokens** (OIDC Core 2) are signed with the client's
  ``id_token_signed_response_alg``; they carry ``at_hash`` / ``c_hash`` (3.1.3.6) when
  issued with an access token or code, and the user's claims for the granted scopes
  (``identity/claims.py``).

Validation checks the signature against the provider's key set (RFC 7515 5.2, with
the gateway's own sans-IO checks from ``auth/jwt_verify.py``), the ``typ`` (RFC 9068
4: an ID token is not an access token), the issuer, the expiry (strict: our own
clock minted it; 30 s of skew tolerated for ``iat`` only) and then revocation,
of one token or of its whole grant.  One token (RFC 7009) is stopped by a
``revoked-at`` mark in the ephemeral store, by ``jti``, kept exactly as long as the
token could still be valid.  A whole grant (a refresh-token family: reuse of a
rotated refresh token, a code used twice, a revoked consent, a user deleted --
RFC 9700 4.14.2, RFC 6749 4.1.2) is stopped by its row in the directory, which every
check of a token issued from a grant reads.

Minting is synchronous: Authlib's grants call it from their threads.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from joserfc import jwt
from joserfc.errors import JoseError

from campusgate.auth.jwt_verify import (
    ClaimsPolicy,
    TokenError,
    allowed_algorithm,
    check_access_token_type,
    check_claims,
    parse_token,
    verify_signature,
)
from campusgate.config.identity import IdentityClient
from campusgate.identity.claims import released_claims

if TYPE_CHECKING:
    from joserfc.jwk import Key

    from campusgate.identity.context import IdentityContext
    from campusgate.identity.models import User

__all__ = [
    "ACCESS_TOKEN_ALG",
    "CLOCK_SKEW",
    "OPAQUE_PREFIX",
    "REFRESH_PREFIX",
    "AccessToken",
    "left_hash",
    "mint_access_token",
    "mint_id_token",
    "read_access_claims",
    "revoke_access_token",
    "revoke_grant",
    "store_opaque",
    "token_digest",
    "validate_access_token",
]

#: Access tokens are always signed with this (resource servers expect it).
ACCESS_TOKEN_ALG = "RS256"
#: Algorithms a token we issued can carry.
_OUR_ALGORITHMS = ("RS256", "ES256")
OPAQUE_PREFIX = "cgat_"
REFRESH_PREFIX = "cgrt_"
#: Seconds another worker's clock may be ahead (``iat`` in the future).
CLOCK_SKEW = 30
#: Hash of ``at_hash`` / ``c_hash`` for each signing algorithm (OIDC Core 3.1.3.6).
_HASHES = {"RS256": hashlib.sha256, "ES256": hashlib.sha256, "PS256": hashlib.sha256,
           "RS384": hashlib.sha384, "ES384": hashlib.sha384, "PS384": hashlib.sha384,
           "RS512": hashlib.sha512, "ES512": hashlib.sha512, "PS512": hashlib.sha512}


@dataclass(frozen=True)
class AccessToken:
    """What a valid access token says."""

    token_id: str                # jti
    client_id: str
    subject: str                 # the user id, or the client id (client_credentials)
    user_id: str | None
    scope: str                   # space-separated
    audience: tuple[str, ...]
    issued_at: int
    expires_at: int
    grant_id: str | None         # the refresh-token family (None: client_credentials)
    auth_time: int | None
    jwt: bool                    # a JWT, or opaque

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    def remaining(self, now: int) -> int:
        """Seconds it stays valid after ``now`` (0 once expired)."""
        return max(0, self.expires_at - now)

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["audience"] = list(self.audience)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AccessToken:
        return cls(**{**record, "audience": tuple(record["audience"])})


def token_digest(token: str) -> str:
    """The storage key of a secret token (the ephemeral store never sees the token)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def left_hash(value: str, alg: str) -> str:
    """``at_hash`` / ``c_hash``: base64url of the left half of the hash of ``value``,
    with the hash of the ID token's ``alg`` (OIDC Core 3.1.3.6, 3.3.2.11)."""
    digest = _HASHES[alg](value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def _sign(header: dict[str, Any], claims: dict[str, Any], key: Key) -> str:
    alg = header["alg"]
    if key.kid:
        header = {**header, "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[alg], default_type=None)


# ------------------------------------------------------------------ minting
def mint_access_token(ctx: IdentityContext, client: IdentityClient, *, user_id: str | None,
                      scope: str, grant_id: str | None,
                      auth_time: int | None) -> tuple[str, AccessToken]:
    """A new access token for ``client`` (and ``user_id``, unless client_credentials).

    A JWT is self-contained; an opaque token's record must be stored by the caller
    with :func:`store_opaque` before the token is handed out.
    """
    now = ctx.now()
    info = AccessToken(
        token_id=secrets.token_urlsafe(16), client_id=client.client_id,
        subject=user_id or client.client_id, user_id=user_id, scope=scope,
        audience=tuple(client.token_audience()), issued_at=now,
        expires_at=now + client.access_token_lifetime, grant_id=grant_id,
        auth_time=auth_time if user_id else None,
        jwt=client.access_token_format == "jwt")
    if not info.jwt:
        return OPAQUE_PREFIX + secrets.token_urlsafe(32), info
    claims: dict[str, Any] = {
        "iss": ctx.issuer, "sub": info.subject,
        "aud": info.audience[0] if len(info.audience) == 1 else list(info.audience),
        "exp": info.expires_at, "iat": info.issued_at, "jti": info.token_id,
        "client_id": info.client_id, "scope": info.scope,
    }
    if info.auth_time is not None:
        claims["auth_time"] = info.auth_time
    if grant_id is not None:
        claims["gid"] = grant_id
    key = ctx.keys.signing_key(ACCESS_TOKEN_ALG)
    return _sign({"alg": ACCESS_TOKEN_ALG, "typ": "at+jwt"}, claims, key), info


async def store_opaque(ctx: IdentityContext, token: str, info: AccessToken) -> None:
    """Remember an opaque access token until it expires."""
    ttl = info.remaining(ctx.now())
    if ttl > 0:
        await ctx.ephemeral.put("at", token_digest(token), info.as_record(), ttl)


def mint_id_token(ctx: IdentityContext, client: IdentityClient, user: User, *,
                  nonce: str | None, auth_time: int | None, session_id: str | None,
                  scopes: Iterable[str], access_token: str | None = None,
                  code: str | None = None) -> str:
    """An ID token for ``user`` signed for ``client`` (OIDC Core 2, 3.1.3.6, 5.4)."""
    alg = client.id_token_signed_response_alg
    now = ctx.now()
    claims = released_claims(user, scopes, ctx.config.scopes)
    claims.update({"iss": ctx.issuer, "sub": user.id, "aud": client.client_id,
                   "exp": now + client.id_token_lifetime, "iat": now,
                   "azp": client.client_id})
    optional = {"auth_time": auth_time, "nonce": nonce, "sid": session_id,
                "at_hash": left_hash(access_token, alg) if access_token else None,
                "c_hash": left_hash(code, alg) if code else None}
    claims.update({name: value for name, value in optional.items() if value is not None})
    return _sign({"alg": alg, "typ": "JWT"}, claims, ctx.keys.signing_key(alg))


# ------------------------------------------------------------------ validation
def _string(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise TokenError(f"the token has no {name} claim")
    return value


def _audience(claims: Mapping[str, Any]) -> tuple[str, ...]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        return tuple(aud)
    raise TokenError("the token has no aud claim")


def read_access_claims(claims: Mapping[str, Any]) -> AccessToken:
    """The :class:`AccessToken` of verified RFC 9068 claims (no I/O)."""
    subject, client_id = _string(claims, "sub"), _string(claims, "client_id")
    scope, grant_id, auth_time = claims.get("scope", ""), claims.get("gid"), \
        claims.get("auth_time")
    if not isinstance(scope, str) or not (grant_id is None or isinstance(grant_id, str)) \
            or not (auth_time is None or type(auth_time) is int):
        raise TokenError("the token's scope, gid or auth_time is malformed")
    return AccessToken(
        token_id=_string(claims, "jti"), client_id=client_id, subject=subject,
        user_id=None if subject == client_id else subject, scope=scope,
        audience=_audience(claims), issued_at=int(claims["iat"]),
        expires_at=int(claims["exp"]), grant_id=grant_id, auth_time=auth_time, jwt=True)


async def _verify_jwt(ctx: IdentityContext, token: str) -> AccessToken:
    parsed = parse_token(token.encode("ascii", "replace"))
    allowed_algorithm(parsed, _OUR_ALGORITHMS)
    check_access_token_type(parsed)
    if parsed.kid is None:
        raise TokenError("the token has no kid")
    try:
        key = ctx.keys.key_set().get_by_kid(parsed.kid)
    except JoseError:
        await ctx.keys.refresh()  # rotated on another worker?
        try:
            key = ctx.keys.key_set().get_by_kid(parsed.kid)
        except JoseError as exc:
            raise TokenError(f"no key {parsed.kid!r} in the provider's key set") from exc
    verify_signature(parsed, key)
    now = ctx.now()
    policy = ClaimsPolicy(issuer=ctx.issuer, required=frozenset({"exp", "iat"}),
                          leeway=CLOCK_SKEW)
    check_claims(parsed.claims, policy, now)
    if now >= parsed.claims["exp"]:
        raise TokenError("the token has expired")
    return read_access_claims(parsed.claims)


async def validate_access_token(ctx: IdentityContext, token: str) -> AccessToken | None:
    """What ``token`` says if it is a valid, unexpired, unrevoked access token we
    issued; None otherwise.  ``StateUnavailable`` propagates (the caller answers 503)."""
    if token.startswith(OPAQUE_PREFIX):
        record = await ctx.ephemeral.get("at", token_digest(token))
        if record is None:
            return None
        info = AccessToken.from_record(record)
        if info.remaining(ctx.now()) <= 0:
            return None
    else:
        try:
            info = await _verify_jwt(ctx, token)
        except TokenError:
            return None
    if await ctx.ephemeral.get("revoked-at", info.token_id) is not None:
        return None
    if info.grant_id is not None:  # the grant's row says whether it was revoked
        grant = await ctx.directory.get_grant(info.grant_id)
        if grant is None or grant.revoked_at is not None:
            return None
    if ctx.client(info.client_id) is None:  # the client was removed since
        return None
    return info


# ------------------------------------------------------------------ revocation
async def revoke_access_token(ctx: IdentityContext, info: AccessToken) -> None:
    """Stop one access token (RFC 7009): marked by ``jti`` until it would expire."""
    ttl = info.remaining(ctx.now())
    if ttl > 0:
        await ctx.ephemeral.put("revoked-at", info.token_id,
                                {"client_id": info.client_id}, ttl)


async def revoke_grant(ctx: IdentityContext, grant_id: str) -> None:
    """Stop a whole grant: its refresh tokens and every access token issued from it
    (each check of those reads the grant's row)."""
    await ctx.directory.revoke_grant(grant_id)

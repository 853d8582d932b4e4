"""Checking a login source's ID token (OpenID Connect Core 3.1.3.7).

The token came straight from the source's token endpoint over TLS, but campusgate
checks it fully anyway -- it is what says who signed in:

- the signature, with a key of the source's key set (fetched, and fetched again for
  an unknown ``kid``: ``auth/jwks.py``), and only RS256 or ES256 (never ``none``, never
  an HMAC algorithm keyed with a public value; RFC 8725 3.1);
- ``iss`` is the source's issuer, ``aud`` names our client id (and, with several
  audiences, ``azp`` is our client id: 3.1.3.7 steps 4-5);
- ``exp`` has not passed and ``iat`` is not in the future, with :data:`LEEWAY`
  seconds of clock skew;
- ``nonce`` is the one sent with this sign-in (replay protection, 3.1.2.1).

No I/O except the key set refresh through the :class:`~campusgate.auth.jwks.KeySource`.
"""

from __future__ import annotations

import hmac
from typing import Any

from campusgate.auth.jwks import FETCH, Fetch, KeySource
from campusgate.auth.jwt_verify import (
    ClaimsPolicy,
    TokenError,
    allowed_algorithm,
    check_claims,
    parse_token,
    verify_signature,
)

__all__ = ["ID_TOKEN_ALGORITHMS", "LEEWAY", "verify_id_token"]

ID_TOKEN_ALGORITHMS = ("RS256", "ES256")
#: Seconds of clock skew allowed between campusgate and the source.
LEEWAY = 60.0


async def verify_id_token(token: str, keys: KeySource, *, issuer: str, client_id: str,
                          nonce: str, now: float) -> dict[str, Any]:
    """The claims of ``token`` once every check passed; TokenError (a sentence fit for
    the operator's log) otherwise."""
    parsed = parse_token(token.encode("ascii", "replace"))
    allowed_algorithm(parsed, ID_TOKEN_ALGORITHMS)
    key = keys.lookup(parsed.kid, parsed.alg)
    if key is FETCH:
        await keys.refresh()
        key = keys.lookup(parsed.kid, parsed.alg, may_fetch=False)
    if isinstance(key, str | Fetch):
        raise TokenError(key if isinstance(key, str) else "the source's keys are not at hand")
    verify_signature(parsed, key)
    check_claims(parsed.claims, ClaimsPolicy(issuer=issuer, audiences=frozenset({client_id}),
                                             required=frozenset({"exp", "iat"}),
                                             leeway=LEEWAY), now)
    aud = parsed.claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and parsed.claims.get("azp") != client_id:
        raise TokenError("the ID token has several audiences and azp is not our client id")
    got = parsed.claim("nonce")
    if got is None or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise TokenError("the ID token's nonce is not the one sent with this sign-in")
    sub = parsed.claim("sub")
    if not sub:
        raise TokenError("the ID token has no sub")
    return parsed.claims

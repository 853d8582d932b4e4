"""Checking an OpenID Connect ID token (OpenID Connect Core 3.1.3.7), for every relying
party in campusgate: the ``sso`` plugin and the identity provider's login sources.

The token came straight from the provider's token endpoint over TLS, but campusgate
checks it fully anyway -- it is what says who signed in:

- the signature, with a key of the provider's key set (fetched, and fetched again for
  an unknown ``kid``: :mod:`campusgate.auth.jwks`), and only an asymmetric algorithm
  (:data:`~campusgate.auth.jwt_verify.ASYMMETRIC_ALGORITHMS`, or fewer when the caller
  narrows them; never ``none``, never an HMAC algorithm keyed with a public value:
  RFC 8725 3.1);
- ``iss`` is the provider's issuer, ``aud`` names our client id (and, with several
  audiences, ``azp`` is our client id: 3.1.3.7 steps 2-5);
- ``exp`` has not passed and ``iat`` is not in the future, with :data:`LEEWAY`
  seconds of clock skew (steps 9-10);
- ``nonce`` is the one sent with this sign-in (step 11, replay protection: 3.1.2.1);
- ``sub`` is present (2: it is whom the token is about).

No I/O except the key set refresh through the :class:`~campusgate.auth.jwks.KeySource`;
imports stay light, since a proxy plugin imports this module.  A failed check raises
:class:`~campusgate.auth.jwt_verify.TokenError` with a sentence fit for the operator's
log; each caller maps it onto its own error.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection
from typing import Any

from campusgate.auth.jwks import Fetch, KeySource
from campusgate.auth.jwt_verify import (
    ASYMMETRIC_ALGORITHMS,
    ClaimsPolicy,
    TokenError,
    allowed_algorithm,
    check_claims,
    parse_token,
    verify_signature,
)

__all__ = ["LEEWAY", "verify_id_token"]

#: Seconds of clock skew allowed between campusgate and the provider.
LEEWAY = 60.0


async def verify_id_token(token: str, keys: KeySource, *, issuer: str, client_id: str,
                          nonce: str, now: float, leeway: float = LEEWAY,
                          algorithms: Collection[str] = ASYMMETRIC_ALGORITHMS,
                          ) -> dict[str, Any]:
    """The claims of ``token`` once every check passed; TokenError otherwise.

    ``algorithms`` may narrow the asymmetric algorithms accepted; an HMAC algorithm or
    ``none`` in it is ignored, so no caller can widen the check by mistake."""
    parsed = parse_token(token.encode("ascii", "replace"))
    allowed_algorithm(parsed, [alg for alg in algorithms if alg in ASYMMETRIC_ALGORITHMS])
    key = keys.lookup(parsed.kid, parsed.alg)
    if isinstance(key, Fetch):
        await keys.refresh()
        key = keys.lookup(parsed.kid, parsed.alg, may_fetch=False)
    if isinstance(key, str | Fetch):
        raise TokenError(key if isinstance(key, str) else "the provider's keys are not at hand")
    verify_signature(parsed, key)
    check_claims(parsed.claims, ClaimsPolicy(issuer=issuer, audiences=frozenset({client_id}),
                                             required=frozenset({"exp", "iat"}),
                                             leeway=leeway), now)
    aud = parsed.claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and parsed.claims.get("azp") != client_id:
        raise TokenError("the ID token has several audiences and azp is not our client id")
    got = parsed.claim("nonce")
    if got is None or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise TokenError("the ID token's nonce is not the one sent with this sign-in")
    if not parsed.claim("sub"):
        raise TokenError("the ID token has no sub")
    return parsed.claims

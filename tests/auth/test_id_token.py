"""Checking an OpenID Connect ID token (auth/id_token.py), as the sso plugin and the
login sources both do: signature, algorithm, issuer, audience, azp, time, nonce, sub."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from campusgate.auth.id_token import verify_id_token
from campusgate.auth.jwks import StaticKeys
from campusgate.auth.jwt_verify import ASYMMETRIC_ALGORITHMS, TokenError

ISSUER = "https://launchpad.classlink.com"
NOW = 1_800_000_000
RSA = RSAKey.generate_key(2048, parameters={"kid": "k1"})
EC = ECKey.generate_key("P-256", parameters={"kid": "k2"})
KEYS = StaticKeys.of(RSAKey.import_key(RSA.as_dict(private=False)),
                     ECKey.import_key(EC.as_dict(private=False)))
GOOD = {"iss": ISSUER, "aud": "me", "sub": "4711", "nonce": "n-1", "iat": NOW,
        "exp": NOW + 600}


def token(key: Any = RSA, alg: str = "RS256", kid: str = "k1", **changes: Any) -> str:
    claims = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": kid}, claims, key)


async def check(raw: str, algorithms: Collection[str] = ASYMMETRIC_ALGORITHMS
                ) -> dict[str, Any]:
    return await verify_id_token(raw, KEYS, issuer=ISSUER, client_id="me", nonce="n-1",
                                 now=NOW, algorithms=algorithms)


@pytest.mark.parametrize("raw", [
    pytest.param(token(role="teacher"), id="rs256, extra claims kept"),
    pytest.param(token(EC, "ES256", "k2"), id="es256"),
    pytest.param(token(aud=["me", "other"], azp="me"), id="several audiences, azp is us"),
    pytest.param(token(exp=NOW - 30), id="small clock skew"),
])
async def test_a_good_id_token_gives_its_claims(raw: str) -> None:
    claims = await check(raw)
    assert (claims["sub"], claims["iss"]) == ("4711", ISSUER)


async def test_claims_other_than_the_checked_ones_come_through() -> None:
    assert (await check(token(role="teacher")))["role"] == "teacher"


@pytest.mark.parametrize(("raw", "reason"), [
    (token(nonce="n-2"), "nonce"),
    (token(nonce=None), "nonce"),
    (token(aud="someone-else"), "audience"),
    (token(aud=["me", "other"]), "azp"),
    (token(aud=["me", "other"], azp="other"), "azp"),
    (token(iss="https://evil.example.com"), "issuer"),
    (token(exp=NOW - 120), "expired"),
    (token(iat=NOW + 600), "future"),
    (token(iat=None), "iat"),
    (token(exp=None), "exp"),
    (token(sub=None), "sub"),
    (token(sub=""), "sub"),
    (token(RSAKey.generate_key(2048)), "signature"),
    (token(kid="unknown"), "no key"),
    (token(OctKey.generate_key(256), "HS256"), "algorithm"),
    ("not-a-jwt", "well-formed"),
])
async def test_a_bad_id_token_is_refused_with_the_reason(raw: str, reason: str) -> None:
    with pytest.raises(TokenError, match=reason):
        await check(raw)


async def test_a_caller_may_narrow_the_algorithms() -> None:
    assert await check(token(), algorithms=("RS256",))
    with pytest.raises(TokenError, match="algorithm"):
        await check(token(EC, "ES256", "k2"), algorithms=("RS256",))


async def test_narrowing_cannot_let_hmac_in() -> None:
    forged = token(OctKey.generate_key(256), "HS256")
    with pytest.raises(TokenError, match="algorithm"):
        await check(forged, algorithms=("HS256", "RS256"))

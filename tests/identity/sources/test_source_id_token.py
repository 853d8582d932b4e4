"""Checking a login source's ID token: signature, issuer, audience, nonce, time."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from campusgate.auth.jwks import StaticKeys
from campusgate.auth.jwt_verify import TokenError
from campusgate.identity.sources.id_token import verify_id_token

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})
NOW = time.time()
GOOD = {"iss": "https://launchpad.classlink.com", "aud": "me", "sub": "4711",
        "nonce": "n-1", "iat": int(NOW), "exp": int(NOW) + 600}


async def check(claims: dict[str, Any], *, key: Any = KEY, alg: str = "RS256") -> dict[str, Any]:
    token = jwt.encode({"alg": alg, "kid": "k1"}, claims, key)
    return await verify_id_token(token, StaticKeys.of(KEY), issuer=GOOD["iss"],
                                 client_id="me", nonce="n-1", now=NOW)


async def test_a_good_id_token_gives_its_claims() -> None:
    assert (await check(GOOD))["sub"] == "4711"


@pytest.mark.parametrize(("change", "reason"), [
    ({"nonce": "n-2"}, "nonce"),
    ({"nonce": None}, "nonce"),
    ({"aud": "someone-else"}, "audience"),
    ({"aud": ["me", "other"]}, "azp"),
    ({"iss": "https://evil.example.com"}, "issuer"),
    ({"exp": int(NOW) - 120}, "expired"),
    ({"iat": int(NOW) + 600}, "future"),
    ({"iat": None}, "iat"),
    ({"sub": None}, "sub"),
])
async def test_a_bad_id_token_is_refused_with_the_reason(change: dict[str, Any],
                                                         reason: str) -> None:
    claims = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(TokenError, match=reason):
        await check(claims)


async def test_several_audiences_are_fine_when_azp_is_us() -> None:
    assert await check({**GOOD, "aud": ["me", "other"], "azp": "me"})


async def test_a_small_clock_skew_is_tolerated() -> None:
    assert await check({**GOOD, "exp": int(NOW) - 30})


async def test_another_key_or_an_hmac_algorithm_is_refused() -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})
    with pytest.raises(TokenError, match="signature"):
        await check(GOOD, key=other)
    with pytest.raises(TokenError, match="algorithm"):
        await check(GOOD, key=OctKey.generate_key(256), alg="HS256")

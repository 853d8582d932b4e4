"""JWT checks without I/O: every algorithm, every claim rule, every confusion attempt."""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc.jwk import OctKey, RSAKey
from token_helpers import (
    HMAC_SECRET,
    b64url,
    forge_hs,
    public_jwk,
    public_pem,
    sign,
    signing_key,
    unsigned,
)

from campusgate.auth.jwt_verify import (
    KEY_TYPES,
    ClaimsPolicy,
    KeyImportError,
    TokenCache,
    TokenError,
    allowed_algorithm,
    check_claims,
    import_credential_key,
    parse_token,
    verify_signature,
)
from campusgate.config.consumers import JWT_ALGORITHMS

NOW = 1_700_000_000.0
CLAIMS = {"iss": "district", "sub": "app", "exp": NOW + 300, "iat": NOW}


def credential_key(alg: str, as_jwk: bool = False) -> Any:
    """The verification key a consumer credential would hold for ``alg``."""
    key = signing_key(alg)
    if alg.startswith("HS"):
        return import_credential_key(alg, HMAC_SECRET + b"0", None)
    text = json.dumps(public_jwk(key)) if as_jwk else public_pem(key)
    return import_credential_key(alg, None, text)


@pytest.mark.parametrize("alg", JWT_ALGORITHMS)
@pytest.mark.parametrize("as_jwk", [False, True])
def test_each_algorithm_verifies_with_its_credential_key(alg: str, as_jwk: bool) -> None:
    token = parse_token(sign(CLAIMS, alg).encode())
    assert token.alg == alg
    verify_signature(token, credential_key(alg, as_jwk))
    assert check_claims(token.claims, ClaimsPolicy(), NOW).exp == NOW + 300


@pytest.mark.parametrize("alg", JWT_ALGORITHMS)
def test_a_changed_payload_fails_for_each_algorithm(alg: str) -> None:
    head, _, signature = sign(CLAIMS, alg).split(".")
    forged = f"{head}.{b64url(json.dumps({**CLAIMS, 'sub': 'admin'}).encode())}.{signature}"
    with pytest.raises(TokenError, match="signature is not valid"):
        verify_signature(parse_token(forged.encode()), credential_key(alg))


@pytest.mark.parametrize("alg", JWT_ALGORITHMS)
def test_a_key_of_another_family_never_verifies(alg: str) -> None:
    token = parse_token(sign(CLAIMS, alg).encode())
    for other in ("HS256", "RS256", "ES256", "EdDSA"):
        if KEY_TYPES[other] == KEY_TYPES[alg]:
            continue
        with pytest.raises(TokenError, match="does not fit"):
            verify_signature(token, credential_key(other))


def test_hs_token_signed_with_the_rsa_public_key_is_refused() -> None:
    """The classic confusion: the attacker uses the published RSA key as an HMAC secret."""
    rsa = signing_key("RS256")
    pem = public_pem(rsa).encode()
    forged = parse_token(forge_hs(CLAIMS, pem).encode())
    rsa_credential = import_credential_key("RS256", None, public_pem(rsa))
    with pytest.raises(TokenError, match="HS256 does not fit a RSA key"):
        verify_signature(forged, rsa_credential)
    # and the public key cannot be configured as an HMAC secret in the first place
    with pytest.raises(KeyImportError):
        import_credential_key("HS256", pem, None)


def test_ec_key_on_the_wrong_curve_is_refused() -> None:
    token = parse_token(sign(CLAIMS, "ES384").encode())
    p256 = credential_key("ES256")
    with pytest.raises(TokenError):
        verify_signature(token, p256)


@pytest.mark.parametrize("header, fault", [
    ({"alg": "RS256"}, None),
    ({"alg": "RS384"}, "the key is for RS384, not RS256"),
    ({"use": "enc"}, "not a signing key"),
])
def test_jwk_alg_and_use_must_fit(header: dict[str, str], fault: str | None) -> None:
    key = RSAKey.import_key({**public_jwk(signing_key("RS256")), **header})
    token = parse_token(sign(CLAIMS, "RS256").encode())
    if fault is None:
        verify_signature(token, key)
    else:
        with pytest.raises(TokenError, match=fault):
            verify_signature(token, key)


@pytest.mark.parametrize("token, fault", [
    (unsigned(CLAIMS), "alg none"),
    (unsigned(CLAIMS, alg="None"), "alg none"),
    ("not-a-jwt", "not a well-formed JWT"),
    ("a.b", "not a well-formed JWT"),
    ("a.b.c.d.e", "not a well-formed JWT"),
    (b64url(b"{}") + "." + b64url(b"{}") + ".", "not a well-formed JWT"),  # no alg
    (b64url(b'{"alg":"HS256"}') + "." + b64url(b"[1]") + ".", "not a JSON object"),
    (b64url(b'{"alg":"HS256"}') + "." + b64url(b"{nope") + ".", "not JSON"),
    (b64url(b'{"alg":"HS256","b64":true,"crit":["b64"]}') + "." + b64url(b"{}") + ".", "b64"),
    (b64url(b'{"alg":"HS256","crit":["exp"]}') + "." + b64url(b"{}") + ".", "header"),
])
def test_malformed_and_unsigned_tokens_are_refused(token: str, fault: str) -> None:
    with pytest.raises(TokenError, match=fault):
        parse_token(token.encode())


def test_algorithm_allow_list() -> None:
    token = parse_token(sign(CLAIMS, "HS256", OctKey.import_key(HMAC_SECRET)).encode())
    allowed_algorithm(token, {"HS256"})
    with pytest.raises(TokenError, match="HS256 is not accepted"):
        allowed_algorithm(token, {"RS256", "ES256"})


@pytest.mark.parametrize("claims, policy, fault", [
    ({"exp": NOW - 31}, ClaimsPolicy(), "expired"),
    ({"exp": NOW - 29}, ClaimsPolicy(), None),  # within the 30 s leeway
    ({"exp": NOW - 1}, ClaimsPolicy(leeway=0), "expired"),
    ({"exp": NOW}, ClaimsPolicy(leeway=0), "expired"),  # exp is the first invalid instant
    ({}, ClaimsPolicy(), "no exp claim"),
    ({}, ClaimsPolicy(required=frozenset()), None),
    ({"exp": "tomorrow"}, ClaimsPolicy(), "not a NumericDate"),
    ({"exp": True}, ClaimsPolicy(), "not a NumericDate"),
    ({"exp": NOW + 60, "nbf": NOW + 120}, ClaimsPolicy(), "not valid yet"),
    ({"exp": NOW + 60, "nbf": NOW + 20}, ClaimsPolicy(), None),  # leeway
    ({"exp": NOW + 60}, ClaimsPolicy(required=frozenset({"exp", "nbf"})), "no nbf claim"),
    ({"exp": NOW + 60, "iat": NOW + 600}, ClaimsPolicy(), "issued in the future"),
    ({"exp": NOW + 60, "iss": "a"}, ClaimsPolicy(issuer="a"), None),
    ({"exp": NOW + 60, "iss": "b"}, ClaimsPolicy(issuer="a"), "issuer"),
    ({"exp": NOW + 60}, ClaimsPolicy(issuer="a"), "issuer"),
    ({"exp": NOW + 60, "aud": "api"}, ClaimsPolicy(audiences=frozenset({"api"})), None),
    ({"exp": NOW + 60, "aud": ["x", "api"]}, ClaimsPolicy(audiences=frozenset({"api"})),
     None),
    ({"exp": NOW + 60, "aud": ["x"]}, ClaimsPolicy(audiences=frozenset({"api"})), "audience"),
    ({"exp": NOW + 60}, ClaimsPolicy(audiences=frozenset({"api"})), "audience"),
    ({"exp": NOW + 7200, "iat": NOW}, ClaimsPolicy(max_lifetime=3600), "lifetime"),
    ({"exp": NOW + 3600, "iat": NOW}, ClaimsPolicy(max_lifetime=3600), None),
    ({"exp": NOW + 7200}, ClaimsPolicy(max_lifetime=3600), "lifetime"),  # measured from now
])
def test_claims(claims: dict[str, Any], policy: ClaimsPolicy, fault: str | None) -> None:
    if fault is None:
        check_claims(claims, policy, NOW)
    else:
        with pytest.raises(TokenError, match=fault):
            check_claims(claims, policy, NOW)


@pytest.mark.parametrize("alg, secret, public_key, fault", [
    ("RS256", None, "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----", "RSA"),
    ("RS256", None, json.dumps({"kty": "EC", "crv": "P-256"}), "kty RSA"),
    ("ES256", None, "__rsa__", "EC"),
    ("EdDSA", None, "__rsa__", "OKP"),
    ("HS256", None, None, "needs a secret"),
])
def test_unusable_credential_keys_are_reported(alg: str, secret: bytes | None,
                                               public_key: str | None, fault: str) -> None:
    if public_key == "__rsa__":
        public_key = public_pem(signing_key("RS256"))
    with pytest.raises(KeyImportError, match=fault):
        import_credential_key(alg, secret, public_key)


def test_token_cache_expires_entries_and_evicts_the_least_recent() -> None:
    cache: TokenCache[str] = TokenCache(max_entries=2)
    cache.put(b"a", "A", expires=100)
    cache.put(b"b", "B", expires=200)
    assert cache.get(b"a", now=99) == "A"  # a is now the most recent
    cache.put(b"c", "C", expires=300)  # evicts b
    assert cache.get(b"b", now=0) is None
    assert cache.get(b"a", now=100) is None  # expired at 100
    assert cache.get(b"c", now=299) == "C"
    assert len(cache) == 1

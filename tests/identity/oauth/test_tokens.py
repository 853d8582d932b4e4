"""Access and ID tokens: what they say (checked with PyJWT, independently of our own
code), and which tokens validation refuses."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import jwt as pyjwt
import pytest
from identity_harness import ISSUER, Clock, identity_config, sealed
from joserfc import jwt as josejwt
from joserfc.jwk import RSAKey

from campusgate.config.identity import IdentityClient
from campusgate.identity.context import IdentityContext
from campusgate.identity.keys import KeyManager
from campusgate.identity.models import Grant, User
from campusgate.identity.tokens import (
    AccessToken,
    left_hash,
    mint_access_token,
    mint_id_token,
    revoke_access_token,
    revoke_grant,
    store_opaque,
    validate_access_token,
)
from campusgate.keyring import Keyring


@pytest.fixture
def ctx(identity_ctx: IdentityContext, clock: Clock) -> IdentityContext:
    # PyJWT checks exp and iat against the real time.
    clock.now = float(int(time.time()))
    return identity_ctx


@pytest.fixture
async def user(ctx: IdentityContext) -> User:
    return await ctx.directory.create_user(
        "ada", "correct horse", email="ada@example.edu", email_verified=True,
        name="Ada Lovelace", given_name="Ada", family_name="Lovelace",
        claims={"locale": "en-GB"})


@pytest.fixture
async def grant(ctx: IdentityContext, user: User) -> Grant:
    return await ctx.directory.create_grant("lms", user.id, "openid profile email",
                                            ctx.now() - 5)


def client(ctx: IdentityContext, client_id: str) -> IdentityClient:
    found = ctx.client(client_id)
    assert found is not None
    return found


def public_key(ctx: IdentityContext, token: str) -> Any:
    kid = pyjwt.get_unverified_header(token)["kid"]
    return pyjwt.PyJWKSet.from_dict(ctx.keys.jwks())[kid].key


def reconfigure(ctx: IdentityContext, keyring: Keyring, **changes: Any) -> None:
    """Change the lms client (and keep the others)."""
    data = identity_config().model_dump(exclude_none=True)
    data["clients"][0].update(changes)
    ctx.update(sealed(identity_config(clients=data["clients"]), keyring))


def sign(ctx: IdentityContext, claims: dict[str, Any], header: dict[str, Any]) -> str:
    key = ctx.keys.signing_key("RS256")
    return josejwt.encode({"alg": "RS256", "kid": key.kid, **header}, claims, key,
                          default_type=None)


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "==="))
    return result


# ------------------------------------------------------------------ access tokens
async def test_jwt_access_token_follows_rfc9068(ctx: IdentityContext, user: User,
                                                grant: Grant) -> None:
    token, info = mint_access_token(ctx, client(ctx, "lms"), user_id=user.id,
                                    scope="openid profile", grant_id=grant.id,
                                    auth_time=ctx.now() - 5)
    header = pyjwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
    assert header["kid"] == ctx.keys.signing_key("RS256").kid
    claims = pyjwt.decode(token, public_key(ctx, token), algorithms=["RS256"],
                          audience="lms", issuer=ISSUER,
                          options={"require": ["exp", "iat", "jti", "sub", "aud"]})
    assert claims["sub"] == user.id and claims["client_id"] == "lms"
    assert claims["aud"] == "lms"  # one audience: a string
    assert claims["scope"] == "openid profile"
    assert claims["exp"] - claims["iat"] == 3600 and claims["iat"] == ctx.now()
    assert claims["auth_time"] == ctx.now() - 5 and claims["gid"] == grant.id
    assert claims["jti"] == info.token_id and len(info.token_id) >= 16
    assert await validate_access_token(ctx, token) == info


async def test_client_credentials_token_names_the_client_and_its_audience(
        ctx: IdentityContext) -> None:
    token, _ = mint_access_token(ctx, client(ctx, "reports"), user_id=None,
                                 scope="roster.read", grant_id=None, auth_time=None)
    claims = pyjwt.decode(token, public_key(ctx, token), algorithms=["RS256"],
                          audience="https://api.example.edu", issuer=ISSUER)
    assert claims["sub"] == "reports" and "auth_time" not in claims and "gid" not in claims
    info = await validate_access_token(ctx, token)
    assert info is not None and info.user_id is None and info.subject == "reports"
    assert info.audience == ("https://api.example.edu",) and info.grant_id is None


async def test_several_audiences_are_a_list(ctx: IdentityContext, keyring: Keyring) -> None:
    reconfigure(ctx, keyring, audience=["https://a.example.edu", "https://b.example.edu"])
    token, _ = mint_access_token(ctx, client(ctx, "lms"), user_id=None, scope="",
                                 grant_id=None, auth_time=None)
    assert claims_of(token)["aud"] == ["https://a.example.edu", "https://b.example.edu"]
    info = await validate_access_token(ctx, token)
    assert info is not None and info.audience == ("https://a.example.edu",
                                                  "https://b.example.edu")


async def test_lifetime_is_per_client_and_expiry_is_strict(
        ctx: IdentityContext, clock: Clock, keyring: Keyring, grant: Grant) -> None:
    reconfigure(ctx, keyring, access_token_lifetime=300)
    token, info = mint_access_token(ctx, client(ctx, "lms"), user_id="u", scope="openid",
                                    grant_id=grant.id, auth_time=None)
    assert info.expires_at - info.issued_at == 300
    clock.advance(299)
    assert await validate_access_token(ctx, token) is not None
    clock.advance(1)
    assert await validate_access_token(ctx, token) is None


def _flip_last_char(segment: str) -> str:
    return segment[:-1] + ("A" if segment[-1] != "A" else "B")


async def test_tampered_tokens_are_refused(ctx: IdentityContext, grant: Grant) -> None:
    token, _ = mint_access_token(ctx, client(ctx, "lms"), user_id="u", scope="openid",
                                 grant_id=grant.id, auth_time=None)
    header, payload, signature = token.split(".")
    more_scope = {**claims_of(token), "scope": "openid roster.read"}
    forged_payload = base64.urlsafe_b64encode(
        json.dumps(more_scope).encode()).rstrip(b"=").decode()
    for bad in (f"{header}.{forged_payload}.{signature}",
                f"{header}.{payload}.{_flip_last_char(signature)}",
                f"{header}.{payload}.", "not-a-token", ""):
        assert await validate_access_token(ctx, bad) is None, bad


async def test_unsigned_and_foreign_key_tokens_are_refused(ctx: IdentityContext,
                                                         grant: Grant) -> None:
    token, _ = mint_access_token(ctx, client(ctx, "lms"), user_id="u", scope="openid",
                                 grant_id=grant.id, auth_time=None)
    claims = claims_of(token)
    kid = pyjwt.get_unverified_header(token)["kid"]
    none_header = base64.urlsafe_b64encode(json.dumps(
        {"alg": "none", "typ": "at+jwt", "kid": kid}).encode()).rstrip(b"=").decode()
    assert await validate_access_token(ctx, none_header + "." + token.split(".")[1] + ".") \
        is None
    stranger = RSAKey.generate_key(2048, parameters={"kid": kid})
    foreign = josejwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": kid}, claims,
                             stranger, default_type=None)
    assert await validate_access_token(ctx, foreign) is None


async def test_wrong_type_or_issuer_is_refused(ctx: IdentityContext, user: User) -> None:
    now = ctx.now()
    good = {"iss": ISSUER, "sub": "u", "aud": "lms", "exp": now + 60, "iat": now,
            "jti": "j1", "client_id": "lms", "scope": "openid"}
    assert await validate_access_token(ctx, sign(ctx, good, {"typ": "at+jwt"})) is not None
    assert await validate_access_token(ctx, sign(ctx, good, {"typ": "JWT"})) is None
    assert await validate_access_token(ctx, sign(ctx, good, {})) is None
    other_issuer = {**good, "iss": "https://evil.example"}
    assert await validate_access_token(ctx, sign(ctx, other_issuer, {"typ": "at+jwt"})) \
        is None
    future = {**good, "iat": now + 120}
    assert await validate_access_token(ctx, sign(ctx, future, {"typ": "at+jwt"})) is None
    # An ID token is not an access token (RFC 9068 4).
    id_token = mint_id_token(ctx, client(ctx, "lms"), user, nonce=None, auth_time=None,
                             session_id=None, scopes=["openid"])
    assert await validate_access_token(ctx, id_token) is None


async def test_revoked_token_is_refused_and_others_are_not(ctx: IdentityContext,
                                                         grant: Grant) -> None:
    lms = client(ctx, "lms")
    first, info = mint_access_token(ctx, lms, user_id="u", scope="openid", grant_id=grant.id,
                                    auth_time=None)
    second, _ = mint_access_token(ctx, lms, user_id="u", scope="openid", grant_id=grant.id,
                                  auth_time=None)
    await revoke_access_token(ctx, info)
    assert await validate_access_token(ctx, first) is None
    assert await validate_access_token(ctx, second) is not None


async def test_revoked_grant_stops_its_access_and_refresh_tokens(
        ctx: IdentityContext, keyring: Keyring, user: User, grant: Grant) -> None:
    lms = client(ctx, "lms")
    jwt_token, _ = mint_access_token(ctx, lms, user_id=user.id, scope="openid",
                                     grant_id=grant.id, auth_time=None)
    refresh = "cgrt_test-refresh-token"
    await ctx.directory.save_refresh_token(refresh, grant, ctx.now(), ctx.now() + 3600)
    other_grant = await ctx.directory.create_grant("lms", user.id, "openid", None)
    unrelated, _ = mint_access_token(ctx, lms, user_id=user.id, scope="openid",
                                     grant_id=other_grant.id, auth_time=None)
    reconfigure(ctx, keyring, access_token_format="opaque")
    opaque, opaque_info = mint_access_token(ctx, client(ctx, "lms"), user_id=user.id,
                                            scope="openid", grant_id=grant.id,
                                            auth_time=None)
    await store_opaque(ctx, opaque, opaque_info)
    assert await validate_access_token(ctx, opaque) is not None

    await revoke_grant(ctx, grant.id)

    assert await validate_access_token(ctx, jwt_token) is None
    assert await validate_access_token(ctx, opaque) is None
    assert await validate_access_token(ctx, unrelated) is not None
    record = await ctx.directory.find_refresh_token(refresh)
    assert record is not None and record.revoked


async def test_revocations_made_from_the_admin_side_reach_access_tokens(
        ctx: IdentityContext, user: User, grant: Grant) -> None:
    """Revoking a consent or deleting a user changes only the directory (the admin API
    has no state backend); access tokens of those grants stop all the same."""
    token, _ = mint_access_token(ctx, client(ctx, "lms"), user_id=user.id, scope="openid",
                                 grant_id=grant.id, auth_time=None)
    assert await validate_access_token(ctx, token) is not None
    await ctx.directory.save_consent(user.id, "lms", ["openid"])
    await ctx.directory.revoke_consent(user.id, "lms")
    assert await validate_access_token(ctx, token) is None
    other = await ctx.directory.create_grant("lms", user.id, "openid", None)
    token, _ = mint_access_token(ctx, client(ctx, "lms"), user_id=user.id, scope="openid",
                                 grant_id=other.id, auth_time=None)
    await ctx.directory.delete_user(user.id)
    assert await validate_access_token(ctx, token) is None


async def test_opaque_tokens_live_in_the_state_store_until_expiry(
        ctx: IdentityContext, clock: Clock, keyring: Keyring, grant: Grant) -> None:
    reconfigure(ctx, keyring, access_token_format="opaque", access_token_lifetime=60)
    token, info = mint_access_token(ctx, client(ctx, "lms"), user_id="u", scope="openid",
                                    grant_id=grant.id, auth_time=10)
    assert token.startswith("cgat_") and token.count(".") == 0 and len(token) >= 45
    assert not info.jwt
    assert await validate_access_token(ctx, token) is None  # not stored yet
    await store_opaque(ctx, token, info)
    assert await validate_access_token(ctx, token) == info
    assert await validate_access_token(ctx, token + "x") is None
    clock.advance(60)
    assert await validate_access_token(ctx, token) is None


async def test_tokens_of_a_removed_client_are_refused(ctx: IdentityContext,
                                                     keyring: Keyring, grant: Grant) -> None:
    token, _ = mint_access_token(ctx, client(ctx, "mobile"), user_id="u", scope="openid",
                                 grant_id=grant.id, auth_time=None)
    assert await validate_access_token(ctx, token) is not None
    data = identity_config().model_dump(exclude_none=True)
    ctx.update(sealed(identity_config(
        clients=[c for c in data["clients"] if c["client_id"] != "mobile"]), keyring))
    assert await validate_access_token(ctx, token) is None


async def test_tokens_survive_a_rotation_made_by_another_worker(
        ctx: IdentityContext, clock: Clock, grant: Grant) -> None:
    before, _ = mint_access_token(ctx, client(ctx, "lms"), user_id="u", scope="openid",
                                  grant_id=grant.id, auth_time=None)
    other_worker = KeyManager(ctx.directory, clock)
    await other_worker.ensure()
    await other_worker.rotate(overlap=3600)
    clock.advance(10)
    assert await validate_access_token(ctx, before) is not None
    after = josejwt.encode(
        {"alg": "RS256", "typ": "at+jwt",
         "kid": other_worker.signing_key("RS256").kid},
        {**claims_of(before), "iat": ctx.now(), "exp": ctx.now() + 7200, "jti": "new"},
        other_worker.signing_key("RS256"), default_type=None)
    assert await validate_access_token(ctx, after) is not None
    old_kid = pyjwt.get_unverified_header(before)["kid"]
    clock.advance(3600)  # the overlap is over: the old key leaves the JWKS
    assert await validate_access_token(ctx, after) is not None
    await ctx.keys.refresh()
    assert old_kid not in {key["kid"] for key in ctx.keys.jwks()["keys"]}


def test_access_token_record_round_trips() -> None:
    info = AccessToken(token_id="j", client_id="lms", subject="u", user_id="u",
                       scope="openid", audience=("a", "b"), issued_at=1, expires_at=2,
                       grant_id="g", auth_time=None, jwt=False)
    assert AccessToken.from_record(json.loads(json.dumps(info.as_record()))) == info


# ------------------------------------------------------------------ ID tokens
def expected_half_hash(value: str) -> str:
    """OIDC Core 3.1.3.6, written out: SHA-256, left 128 bits, base64url unpadded."""
    digest = hashlib.sha256(value.encode("ascii")).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_id_token_claims_and_hashes(ctx: IdentityContext, keyring: Keyring,
                                          user: User, alg: str) -> None:
    reconfigure(ctx, keyring, id_token_signed_response_alg=alg, id_token_lifetime=600)
    access_token, code = "access-token-value", "the-authorization-code"
    token = mint_id_token(ctx, client(ctx, "lms"), user, nonce="n-0S6_WzA2Mj",
                          auth_time=ctx.now() - 30, session_id="sid-1",
                          scopes=["openid", "email"], access_token=access_token, code=code)
    header = pyjwt.get_unverified_header(token)
    assert header["alg"] == alg and header["kid"] == ctx.keys.signing_key(alg).kid
    claims = pyjwt.decode(token, public_key(ctx, token), algorithms=[alg], audience="lms",
                          issuer=ISSUER)
    assert claims["sub"] == user.id and claims["azp"] == "lms"
    assert claims["nonce"] == "n-0S6_WzA2Mj" and claims["sid"] == "sid-1"
    assert claims["auth_time"] == ctx.now() - 30
    assert claims["exp"] - claims["iat"] == 600
    assert claims["at_hash"] == expected_half_hash(access_token)
    assert claims["c_hash"] == expected_half_hash(code)
    assert claims["email"] == "ada@example.edu" and claims["email_verified"] is True
    assert "name" not in claims  # profile was not granted


async def test_id_token_leaves_out_what_was_not_given(ctx: IdentityContext,
                                                      user: User) -> None:
    token = mint_id_token(ctx, client(ctx, "lms"), user, nonce=None, auth_time=None,
                          session_id=None, scopes=["openid", "profile"])
    claims = claims_of(token)
    for absent in ("nonce", "sid", "auth_time", "at_hash", "c_hash", "email"):
        assert absent not in claims
    assert claims["preferred_username"] == "ada" and claims["name"] == "Ada Lovelace"


def test_left_hash_known_value() -> None:
    # OIDC Core A.3 example access token and its at_hash (RS256).
    assert left_hash("jHkWEdUXMU1BwAsC4vtUsZwnNbGpcHPQ8gw6Qhk7Za8", "RS256") == \
        expected_half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNbGpcHPQ8gw6Qhk7Za8")
    assert left_hash("x", "ES512") == base64.urlsafe_b64encode(
        hashlib.sha512(b"x").digest()[:32]).decode().rstrip("=")

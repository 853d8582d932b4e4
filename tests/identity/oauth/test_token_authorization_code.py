"""The authorization code grant at the token endpoint (RFC 6749 4.1.3-4.1.4, RFC 9700
4.2)."""

from __future__ import annotations

import asyncio

import jwt as pyjwt
from identity_harness import Clock, identity_config, sealed
from oauth_harness import AUTH_TIME_AGO, SID, Flow

from campusgate.identity.context import IdentityContext
from campusgate.identity.oauth.grants.authorization_code import CODE_KIND
from campusgate.identity.tokens import token_digest, validate_access_token
from campusgate.keyring import Keyring


def claims_of(token: str) -> dict[str, object]:
    claims: dict[str, object] = pyjwt.decode(token, options={"verify_signature": False})
    return claims


async def test_code_exchange_returns_tokens_that_are_not_cached(flow: Flow) -> None:
    code = await flow.code(nonce="n-0S6_WzA2Mj")
    response = await flow.redeem(code)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "openid profile email"
    info = await validate_access_token(flow.ctx, body["access_token"])
    assert info is not None
    assert (info.user_id, info.client_id, info.scope) == (flow.user.id, "lms",
                                                         "openid profile email")
    assert info.grant_id is not None


async def test_id_token_carries_nonce_session_and_sign_in_time(flow: Flow) -> None:
    code = await flow.code(nonce="n-0S6_WzA2Mj")
    body = (await flow.redeem(code)).json()
    claims = claims_of(body["id_token"])
    assert claims["iss"] == flow.ctx.issuer
    assert claims["sub"] == flow.user.id and claims["aud"] == "lms"
    assert claims["nonce"] == "n-0S6_WzA2Mj" and claims["sid"] == SID
    assert claims["auth_time"] == flow.ctx.now() - AUTH_TIME_AGO
    assert claims["email"] == "alice@example.edu"
    assert "at_hash" in claims


async def test_plain_oauth_request_gets_no_id_token(flow: Flow) -> None:
    body = await flow.tokens(scope="profile")
    assert "id_token" not in body
    assert body["scope"] == "profile"


async def test_refresh_token_only_with_offline_access(flow: Flow) -> None:
    assert "refresh_token" not in await flow.tokens(scope="openid")
    body = await flow.tokens(scope="openid offline_access")
    assert body["refresh_token"].startswith("cgrt_")


async def test_code_is_stored_only_by_its_hash(flow: Flow) -> None:
    code = await flow.code()
    assert await flow.ctx.ephemeral.get(CODE_KIND, code) is None
    assert await flow.ctx.ephemeral.get(CODE_KIND, token_digest(code)) is not None


async def test_second_use_of_a_code_fails_and_revokes_what_the_first_issued(
        flow: Flow) -> None:
    code = await flow.code(scope="openid offline_access")
    first = (await flow.redeem(code)).json()
    assert await validate_access_token(flow.ctx, first["access_token"]) is not None

    again = await flow.redeem(code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert await validate_access_token(flow.ctx, first["access_token"]) is None
    refreshed = await flow.refresh(first["refresh_token"])
    assert refreshed.json()["error"] == "invalid_grant"


async def test_expired_code_is_invalid_grant(flow: Flow, clock: Clock) -> None:
    code = await flow.code()
    clock.advance(61)  # code_lifetime is 60 s
    response = await flow.redeem(code)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_code_is_bound_to_its_client(flow: Flow, identity_ctx: IdentityContext,
                                           keyring: Keyring) -> None:
    config = identity_config()
    config.clients.append(config.clients[0].model_copy(
        update={"client_id": "lms2", "client_secret": "lms2-secret-0123456789abcdef"}))
    identity_ctx.update(sealed(config, keyring))
    code = await flow.code()
    response = await flow.token({"grant_type": "authorization_code", "code": code,
                                 "redirect_uri": "https://lms.example.edu/callback"},
                                client_id="lms2", secret="lms2-secret-0123456789abcdef")
    assert response.json()["error"] == "invalid_grant"
    # the rightful client can still use it
    assert (await flow.redeem(code)).status_code == 200


async def test_redirect_uri_must_be_identical(flow: Flow) -> None:
    code = await flow.code()
    wrong = await flow.redeem(code, redirect_uri="https://lms.example.edu/callback/")
    assert wrong.json()["error"] == "invalid_grant"
    missing = await flow.token({"grant_type": "authorization_code", "code": code})
    assert missing.json()["error"] == "invalid_grant"
    assert (await flow.redeem(code)).status_code == 200


async def test_redirect_uri_may_be_left_out_when_the_request_left_it_out(flow: Flow) -> None:
    response = await flow.authorize(response_type="code", client_id="lms", scope="openid")
    code = response.headers["location"].split("code=")[1].split("&")[0]
    token = await flow.token({"grant_type": "authorization_code", "code": code})
    assert token.status_code == 200, token.text


async def test_unknown_code_is_invalid_grant(flow: Flow) -> None:
    response = await flow.redeem("not-a-code")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_missing_code_is_invalid_request(flow: Flow) -> None:
    response = await flow.token({"grant_type": "authorization_code",
                                 "redirect_uri": "https://lms.example.edu/callback"})
    assert response.json()["error"] == "invalid_request"


async def test_disabled_user_gets_no_tokens(flow: Flow) -> None:
    code = await flow.code()
    await flow.ctx.directory.update_user(flow.user.id, disabled=True)
    response = await flow.redeem(code)
    assert response.json()["error"] == "invalid_grant"


async def test_opaque_access_tokens_per_client(flow: Flow, identity_ctx: IdentityContext,
                                               keyring: Keyring) -> None:
    config = identity_config()
    config.clients[0] = config.clients[0].model_copy(
        update={"access_token_format": "opaque", "access_token_lifetime": 600})
    identity_ctx.update(sealed(config, keyring))
    body = await flow.tokens()
    assert body["access_token"].startswith("cgat_")
    assert body["expires_in"] == 600
    info = await validate_access_token(flow.ctx, body["access_token"])
    assert info is not None and not info.jwt and info.user_id == flow.user.id


async def test_a_client_without_the_grant_is_unauthorized(flow: Flow) -> None:
    response = await flow.token({"grant_type": "authorization_code", "code": "x",
                                 "redirect_uri": "https://lms.example.edu/callback"},
                                client_id="reports")
    assert response.json()["error"] == "unauthorized_client"


async def test_concurrent_redemptions_one_wins_and_is_revoked(flow: Flow) -> None:
    code = await flow.code(scope="openid offline_access")
    answers = await asyncio.gather(*(flow.redeem(code) for _ in range(4)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 400, 400, 400]
    assert {a.json()["error"] for a in answers if a.status_code == 400} == {"invalid_grant"}
    winner = next(a.json() for a in answers if a.status_code == 200)
    assert await validate_access_token(flow.ctx, winner["access_token"]) is None

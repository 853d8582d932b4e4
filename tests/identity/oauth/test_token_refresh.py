"""The refresh token grant (RFC 6749 6): rotation, reuse detection (RFC 9700
4.14.2), client binding, scope narrowing, and new ID tokens (OIDC Core 12.2)."""

from __future__ import annotations

import asyncio

import jwt as pyjwt
from identity_harness import Clock
from oauth_harness import AUTH_TIME_AGO, Flow, pkce_pair

from campusgate.identity.tokens import validate_access_token

OFFLINE = "openid profile offline_access"


async def test_each_refresh_returns_a_new_refresh_token(flow: Flow) -> None:
    first = await flow.tokens(scope=OFFLINE)
    response = await flow.refresh(first["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == OFFLINE
    third = await flow.refresh(second["refresh_token"])
    assert third.status_code == 200


async def test_reuse_revokes_the_whole_family(flow: Flow) -> None:
    first = await flow.tokens(scope=OFFLINE)
    second = (await flow.refresh(first["refresh_token"])).json()
    assert await validate_access_token(flow.ctx, second["access_token"]) is not None

    replay = await flow.refresh(first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # the legitimate holder's newer tokens die with the family
    assert (await flow.refresh(second["refresh_token"])).json()["error"] == "invalid_grant"
    assert await validate_access_token(flow.ctx, second["access_token"]) is None
    assert await validate_access_token(flow.ctx, first["access_token"]) is None


async def test_other_families_survive_a_reuse(flow: Flow) -> None:
    mine = await flow.tokens(scope=OFFLINE)
    other = await flow.tokens(scope=OFFLINE)
    await flow.refresh(mine["refresh_token"])
    await flow.refresh(mine["refresh_token"])  # reuse: revokes mine only
    assert (await flow.refresh(other["refresh_token"])).status_code == 200


async def test_refresh_token_is_bound_to_its_client(flow: Flow) -> None:
    verifier, challenge = pkce_pair()
    redirect = "http://127.0.0.1/callback"
    code = await flow.code(client_id="mobile", redirect_uri=redirect, scope=OFFLINE,
                           code_challenge=challenge, code_challenge_method="S256")
    tokens = (await flow.redeem(code, client_id="mobile", redirect_uri=redirect,
                                code_verifier=verifier)).json()
    stolen = await flow.refresh(tokens["refresh_token"], client_id="lms")
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    # a public client refreshes with its client_id; the token was not spent above
    own = await flow.token({"grant_type": "refresh_token", "client_id": "mobile",
                            "refresh_token": tokens["refresh_token"]}, client_id="mobile")
    assert own.status_code == 200, own.text


async def test_expired_refresh_token_is_invalid_grant(flow: Flow, clock: Clock) -> None:
    tokens = await flow.tokens(scope=OFFLINE)
    clock.advance(30 * 86400 + 1)
    response = await flow.refresh(tokens["refresh_token"])
    assert response.json()["error"] == "invalid_grant"


async def test_unknown_refresh_token_is_invalid_grant(flow: Flow) -> None:
    for token in ("cgrt_nothing-like-this", "garbage"):
        response = await flow.refresh(token)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"


async def test_scope_may_be_narrowed_but_not_widened(flow: Flow) -> None:
    tokens = await flow.tokens(scope=OFFLINE)
    wider = await flow.refresh(tokens["refresh_token"], scope="openid email offline_access")
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_scope"
    # the refused request did not spend the token
    narrower = await flow.refresh(tokens["refresh_token"], scope="profile")
    assert narrower.status_code == 200, narrower.text
    body = narrower.json()
    assert body["scope"] == "profile"
    assert "id_token" not in body
    info = await validate_access_token(flow.ctx, body["access_token"])
    assert info is not None and info.scope == "profile"
    # the new refresh token keeps the family's scope (RFC 6749 6)
    again = (await flow.refresh(body["refresh_token"])).json()
    assert again["scope"] == OFFLINE


async def test_refresh_brings_a_new_id_token_with_the_original_auth_time(
        flow: Flow, clock: Clock) -> None:
    tokens = await flow.tokens(scope=OFFLINE, nonce="abc")
    signed_in = flow.ctx.now() - AUTH_TIME_AGO
    clock.advance(600)
    body = (await flow.refresh(tokens["refresh_token"])).json()
    claims = pyjwt.decode(body["id_token"], options={"verify_signature": False})
    assert claims["sub"] == flow.user.id and claims["aud"] == "lms"
    assert claims["auth_time"] == signed_in
    assert claims["iat"] == flow.ctx.now()
    assert "nonce" not in claims


async def test_disabled_user_cannot_refresh(flow: Flow) -> None:
    tokens = await flow.tokens(scope=OFFLINE)
    await flow.ctx.directory.update_user(flow.user.id, disabled=True)
    response = await flow.refresh(tokens["refresh_token"])
    assert response.json()["error"] == "invalid_grant"


async def test_revoked_consent_stops_refresh(flow: Flow) -> None:
    tokens = await flow.tokens(scope=OFFLINE)
    await flow.ctx.directory.save_consent(flow.user.id, "lms", OFFLINE.split())
    await flow.ctx.directory.revoke_consent(flow.user.id, "lms")
    response = await flow.refresh(tokens["refresh_token"])
    assert response.json()["error"] == "invalid_grant"


async def test_missing_refresh_token_is_invalid_request(flow: Flow) -> None:
    response = await flow.token({"grant_type": "refresh_token"})
    assert response.json()["error"] == "invalid_request"


async def test_concurrent_refreshes_one_wins_then_the_family_is_revoked(flow: Flow) -> None:
    tokens = await flow.tokens(scope=OFFLINE)
    answers = await asyncio.gather(*(flow.refresh(tokens["refresh_token"]) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 400, 400]
    winner = next(a.json() for a in answers if a.status_code == 200)
    assert (await flow.refresh(winner["refresh_token"])).json()["error"] == "invalid_grant"

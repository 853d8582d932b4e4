"""The UserInfo endpoint as a relying party calls it (OIDC Core 5.3, RFC 6750)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import httpx
import jwt as pyjwt
import pytest
from identity_harness import identity_config, sealed
from oauth_harness import Flow
from starlette.routing import BaseRoute

from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.oauth import userinfo
from campusgate.identity.tokens import mint_access_token, revoke_grant, store_opaque
from campusgate.keyring import Keyring

AppClient = Callable[[Sequence[BaseRoute]], httpx.AsyncClient]
PATH = "/oauth2/userinfo"


@pytest.fixture
async def user(identity_ctx: IdentityContext) -> User:
    return await identity_ctx.directory.create_user(
        "ada", email="ada@example.edu", email_verified=True, name="Ada Lovelace",
        given_name="Ada", family_name="Lovelace", claims={"grade": "12"})


@pytest.fixture
def http(identity_client: AppClient) -> httpx.AsyncClient:
    return identity_client(userinfo.routes(""))


def token_for(ctx: IdentityContext, user_id: str | None, scope: str,
              client_id: str = "lms", grant_id: str | None = None) -> str:
    client = ctx.client(client_id)
    assert client is not None
    token, _ = mint_access_token(ctx, client, user_id=user_id, scope=scope,
                                 grant_id=grant_id, auth_time=None)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_get_returns_claims_for_the_tokens_scopes(
        identity_ctx: IdentityContext, http: httpx.AsyncClient, user: User) -> None:
    token = token_for(identity_ctx, user.id, "openid email")
    response = await http.get(PATH, headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"sub": user.id, "email": "ada@example.edu",
                               "email_verified": True}


async def test_post_with_form_token_and_profile(
        identity_ctx: IdentityContext, http: httpx.AsyncClient, user: User) -> None:
    token = token_for(identity_ctx, user.id, "openid profile")
    response = await http.post(PATH, data={"access_token": token})
    assert response.status_code == 200
    body = response.json()
    assert body["preferred_username"] == "ada" and body["name"] == "Ada Lovelace"
    assert "email" not in body
    assert (await http.post(PATH, headers=bearer(token))).status_code == 200


async def test_operator_scope_claims(identity_ctx: IdentityContext, keyring: Keyring,
                                     http: httpx.AsyncClient, user: User) -> None:
    data = identity_config().model_dump(exclude_none=True)
    data["clients"][0]["scopes"] = ["openid", "roster.read"]
    identity_ctx.update(sealed(identity_config(
        clients=data["clients"],
        scopes=[{"name": "roster.read", "claims": ["grade"]}]), keyring))
    token = token_for(identity_ctx, user.id, "openid roster.read")
    response = await http.get(PATH, headers=bearer(token))
    assert response.json() == {"sub": user.id, "grade": "12"}


async def test_opaque_tokens_work_too(identity_ctx: IdentityContext, keyring: Keyring,
                                      http: httpx.AsyncClient, user: User) -> None:
    data = identity_config().model_dump(exclude_none=True)
    data["clients"][0]["access_token_format"] = "opaque"
    identity_ctx.update(sealed(identity_config(clients=data["clients"]), keyring))
    client = identity_ctx.client("lms")
    assert client is not None
    token, info = mint_access_token(identity_ctx, client, user_id=user.id, scope="openid",
                                    grant_id=None, auth_time=None)
    await store_opaque(identity_ctx, token, info)
    response = await http.get(PATH, headers=bearer(token))
    assert response.status_code == 200 and response.json() == {"sub": user.id}


async def test_missing_token_is_a_bare_challenge(http: httpx.AsyncClient) -> None:
    response = await http.get(PATH)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and "error=" not in challenge


@pytest.mark.parametrize("token", ["garbage", "cgat_unknown", "a.b.c"])
async def test_invalid_token(http: httpx.AsyncClient, token: str) -> None:
    response = await http.get(PATH, headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["error"] == "invalid_token"


async def test_token_without_openid_is_insufficient_scope(
        identity_ctx: IdentityContext, http: httpx.AsyncClient, user: User) -> None:
    response = await http.get(PATH, headers=bearer(token_for(identity_ctx, user.id, "email")))
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="openid"' in challenge


async def test_client_credentials_token_has_no_user(
        identity_ctx: IdentityContext, http: httpx.AsyncClient) -> None:
    token = token_for(identity_ctx, None, "openid", client_id="reports", grant_id=None)
    response = await http.get(PATH, headers=bearer(token))
    assert response.status_code == 401


async def test_disabled_or_deleted_user_is_invalid_token(
        identity_ctx: IdentityContext, http: httpx.AsyncClient, user: User) -> None:
    token = token_for(identity_ctx, user.id, "openid")
    assert (await http.get(PATH, headers=bearer(token))).status_code == 200
    await identity_ctx.directory.update_user(user.id, disabled=True)
    response = await http.get(PATH, headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    await identity_ctx.directory.update_user(user.id, disabled=False)
    await identity_ctx.directory.delete_user(user.id)
    assert (await http.get(PATH, headers=bearer(token))).status_code == 401


async def test_revoked_grant(identity_ctx: IdentityContext, http: httpx.AsyncClient,
                             user: User) -> None:
    grant = await identity_ctx.directory.create_grant("lms", user.id, "openid", None)
    token = token_for(identity_ctx, user.id, "openid", grant_id=grant.id)
    await revoke_grant(identity_ctx, grant.id)
    assert (await http.get(PATH, headers=bearer(token))).status_code == 401


async def test_query_token_is_refused(identity_ctx: IdentityContext,
                                      http: httpx.AsyncClient, user: User) -> None:
    token = token_for(identity_ctx, user.id, "openid")
    response = await http.get(PATH, params={"access_token": token})
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


async def test_two_ways_at_once_or_other_schemes_are_invalid_requests(
        identity_ctx: IdentityContext, http: httpx.AsyncClient, user: User) -> None:
    token = token_for(identity_ctx, user.id, "openid")
    both = await http.post(PATH, headers=bearer(token), data={"access_token": token})
    assert both.status_code == 400
    basic = await http.get(PATH, headers={"authorization": "Basic Zm9vOmJhcg=="})
    assert basic.status_code == 400
    lower = await http.get(PATH, headers={"authorization": f"bearer {token}"})
    assert lower.status_code == 200


async def test_userinfo_sub_matches_the_id_token_from_the_token_endpoint(
        flow: Flow, http: httpx.AsyncClient) -> None:
    body = await flow.tokens(scope="openid profile email")
    id_claims = pyjwt.decode(body["id_token"], options={"verify_signature": False})
    response = await http.get(PATH, headers=bearer(body["access_token"]))
    assert response.status_code == 200
    claims = response.json()
    assert claims["sub"] == id_claims["sub"] == flow.user.id  # OIDC Core 5.3.2
    assert claims["email"] == "alice@example.edu" and claims["name"] == "Alice Liddell"

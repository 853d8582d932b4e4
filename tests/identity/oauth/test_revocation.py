"""Token revocation (RFC 7009) as confidential and public clients call it."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

import httpx
import pytest
from identity_harness import SECRETS, identity_config, sealed
from oauth_harness import Flow
from starlette.routing import BaseRoute

from campusgate.identity.context import IdentityContext
from campusgate.identity.models import Grant, User
from campusgate.identity.oauth import revocation
from campusgate.identity.tokens import mint_access_token, store_opaque, validate_access_token
from campusgate.keyring import Keyring

AppClient = Callable[[Sequence[BaseRoute]], httpx.AsyncClient]
PATH = "/oauth2/revoke"


def basic(client_id: str, secret: str | None = None) -> dict[str, str]:
    raw = f"{client_id}:{secret or SECRETS[client_id]}".encode()
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture
def http(identity_client: AppClient) -> httpx.AsyncClient:
    return identity_client(revocation.routes(""))


@pytest.fixture
async def user(identity_ctx: IdentityContext) -> User:
    return await identity_ctx.directory.create_user("ada")


async def family(ctx: IdentityContext, user: User, client_id: str = "lms"
                 ) -> tuple[Grant, str, str]:
    """A grant with one refresh token and one (JWT) access token."""
    grant = await ctx.directory.create_grant(client_id, user.id, "openid", None)
    refresh = f"cgrt_{client_id}-{grant.id}"
    await ctx.directory.save_refresh_token(refresh, grant, ctx.now(), ctx.now() + 86400)
    client = ctx.client(client_id)
    assert client is not None
    access, _ = mint_access_token(ctx, client, user_id=user.id, scope="openid",
                                  grant_id=grant.id, auth_time=None)
    return grant, refresh, access


async def refresh_revoked(ctx: IdentityContext, refresh: str) -> bool:
    record = await ctx.directory.find_refresh_token(refresh)
    assert record is not None
    return record.revoked


async def revoke(http: httpx.AsyncClient, token: str, headers: dict[str, str] | None = None,
                 **form: str) -> httpx.Response:
    return await http.post(PATH, data={"token": token, **form},
                           headers=headers if headers is not None else basic("lms"))


async def test_revoking_a_refresh_token_revokes_its_family(
        identity_ctx: IdentityContext, http: httpx.AsyncClient, user: User) -> None:
    grant, refresh, access = await family(identity_ctx, user)
    _, other_refresh, other_access = await family(identity_ctx, user)
    sibling = f"cgrt_sibling-{grant.id}"
    await identity_ctx.directory.save_refresh_token(sibling, grant, identity_ctx.now(),
                                                    identity_ctx.now() + 86400)
    response = await revoke(http, refresh, token_type_hint="refresh_token")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert await refresh_revoked(identity_ctx, refresh)
    assert await refresh_revoked(identity_ctx, sibling)
    assert await validate_access_token(identity_ctx, access) is None
    stored = await identity_ctx.directory.get_grant(grant.id)
    assert stored is not None and stored.revoked_at is not None
    # another grant of the same user and client is untouched
    assert not await refresh_revoked(identity_ctx, other_refresh)
    assert await validate_access_token(identity_ctx, other_access) is not None


async def test_revoking_an_access_token_revokes_only_it(
        identity_ctx: IdentityContext, http: httpx.AsyncClient, user: User) -> None:
    _, refresh, access = await family(identity_ctx, user)
    lms = identity_ctx.client("lms")
    assert lms is not None
    sibling, _ = mint_access_token(identity_ctx, lms, user_id=user.id, scope="openid",
                                   grant_id=None, auth_time=None)
    # a wrong hint does not stop the revocation (RFC 7009 2.1)
    assert (await revoke(http, access, token_type_hint="refresh_token")).status_code == 200
    assert await validate_access_token(identity_ctx, access) is None
    assert await validate_access_token(identity_ctx, sibling) is not None
    assert not await refresh_revoked(identity_ctx, refresh)


async def test_opaque_access_token(identity_ctx: IdentityContext, keyring: Keyring,
                                   http: httpx.AsyncClient, user: User) -> None:
    data = identity_config().model_dump(exclude_none=True)
    data["clients"][0]["access_token_format"] = "opaque"
    identity_ctx.update(sealed(identity_config(clients=data["clients"]), keyring))
    lms = identity_ctx.client("lms")
    assert lms is not None
    token, info = mint_access_token(identity_ctx, lms, user_id=user.id, scope="openid",
                                    grant_id=None, auth_time=None)
    await store_opaque(identity_ctx, token, info)
    assert (await revoke(http, token, token_type_hint="access_token")).status_code == 200
    assert await validate_access_token(identity_ctx, token) is None


async def test_another_clients_token_is_left_alone_but_answered_200(
        identity_ctx: IdentityContext, http: httpx.AsyncClient, user: User) -> None:
    _, refresh, access = await family(identity_ctx, user, client_id="lms")
    for token in (refresh, access):
        response = await revoke(http, token, basic("reports"))
        assert response.status_code == 200
    assert not await refresh_revoked(identity_ctx, refresh)
    assert await validate_access_token(identity_ctx, access) is not None


@pytest.mark.parametrize("token", ["cgrt_unknown", "cgat_unknown", "not-a-token"])
async def test_unknown_tokens_are_answered_200(http: httpx.AsyncClient, token: str) -> None:
    assert (await revoke(http, token)).status_code == 200


async def test_revoking_twice_is_fine(identity_ctx: IdentityContext, http: httpx.AsyncClient,
                                      user: User) -> None:
    _, refresh, _ = await family(identity_ctx, user)
    assert (await revoke(http, refresh)).status_code == 200
    assert (await revoke(http, refresh)).status_code == 200
    assert await refresh_revoked(identity_ctx, refresh)


async def test_public_client_revokes_its_own_tokens_with_its_client_id(
        identity_ctx: IdentityContext, http: httpx.AsyncClient, user: User) -> None:
    _, refresh, access = await family(identity_ctx, user, client_id="mobile")
    response = await revoke(http, refresh, {}, client_id="mobile")
    assert response.status_code == 200
    assert await refresh_revoked(identity_ctx, refresh)
    assert await validate_access_token(identity_ctx, access) is None


async def test_client_authentication_is_required(
        identity_ctx: IdentityContext, http: httpx.AsyncClient, user: User) -> None:
    _, refresh, _ = await family(identity_ctx, user)
    for headers, form in [({}, {}), ({}, {"client_id": "lms"}),  # confidential: no secret
                          (basic("lms", "wrong-secret-0123456789"), {})]:
        response = await revoke(http, refresh, headers, **form)
        assert response.status_code == 401, (headers, form)
        assert response.json()["error"] == "invalid_client"
    assert not await refresh_revoked(identity_ctx, refresh)


async def test_missing_token_is_invalid_request(http: httpx.AsyncClient) -> None:
    response = await http.post(PATH, data={}, headers=basic("lms"))
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_after_revocation_the_token_endpoint_refuses_the_refresh_token(
        flow: Flow, identity_client: AppClient) -> None:
    body = await flow.tokens(scope="openid offline_access")
    http = identity_client(revocation.routes(""))
    assert (await revoke(http, body["refresh_token"])).status_code == 200
    refused = await flow.refresh(body["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert await validate_access_token(flow.ctx, body["access_token"]) is None

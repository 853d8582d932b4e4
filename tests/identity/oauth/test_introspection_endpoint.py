"""Token introspection (RFC 7662) as resource servers and clients call it, including
client authentication at the endpoint (secrets, private_key_jwt)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from authlib.oauth2.rfc7523 import private_key_jwt_sign  # type: ignore[import-untyped]
from identity_harness import ISSUER, SECRETS, Clock, identity_config, sealed
from joserfc.jwk import ECKey, Key, RSAKey
from starlette.routing import BaseRoute

from campusgate.identity import discovery
from campusgate.identity.context import IdentityContext
from campusgate.identity.keys import public_jwk
from campusgate.identity.models import Grant, User
from campusgate.identity.oauth import introspection
from campusgate.identity.oauth.client_auth import ASSERTION_TYPE
from campusgate.identity.tokens import (
    mint_access_token,
    revoke_access_token,
    revoke_grant,
    store_opaque,
    validate_access_token,
)
from campusgate.keyring import Keyring

AppClient = Callable[[Sequence[BaseRoute]], httpx.AsyncClient]
PATH = "/oauth2/introspect"
CLIENT_KEY = RSAKey.generate_key(2048, parameters={"kid": "svc-1"}, private=True)
CLIENT_EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "svc-2"}, private=True)
JWT_CLIENT = {"client_id": "svc", "token_endpoint_auth_method": "private_key_jwt",
              "jwks": {"keys": [public_jwk(CLIENT_KEY), public_jwk(CLIENT_EC_KEY)]},
              "grant_types": ["client_credentials"], "scopes": ["roster.read"]}
POST_CLIENT = {"client_id": "portal", "token_endpoint_auth_method": "client_secret_post",
               "client_secret": "portal-secret-0123456789", "grant_types": ["client_credentials"],
               "scopes": ["roster.read"]}


def basic(client_id: str, secret: str | None = None) -> dict[str, str]:
    raw = f"{client_id}:{secret or SECRETS[client_id]}".encode()
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture
def ctx(identity_ctx: IdentityContext, keyring: Keyring) -> IdentityContext:
    clients = identity_config().model_dump(exclude_none=True)["clients"]
    identity_ctx.update(sealed(identity_config(clients=[*clients, JWT_CLIENT, POST_CLIENT]),
                               keyring))
    return identity_ctx


@pytest.fixture
def http(ctx: IdentityContext, identity_client: AppClient) -> httpx.AsyncClient:
    return identity_client(introspection.routes(""))


@pytest.fixture
async def user(ctx: IdentityContext) -> User:
    return await ctx.directory.create_user("Ada", email="ada@example.edu")


@pytest.fixture
async def grant(ctx: IdentityContext, user: User) -> Grant:
    return await ctx.directory.create_grant("lms", user.id, "openid profile", 1_799_999_000)


def access_token(ctx: IdentityContext, client_id: str, user_id: str | None,
                 grant_id: str | None, scope: str = "openid profile") -> str:
    client = ctx.client(client_id)
    assert client is not None
    token, _ = mint_access_token(ctx, client, user_id=user_id, scope=scope,
                                 grant_id=grant_id, auth_time=1_799_999_000 if user_id else None)
    return token


async def ask(http: httpx.AsyncClient, token: str, auth: dict[str, str] | None = None,
              **form: str) -> Any:
    response = await http.post(PATH, data={"token": token, **form},
                               headers=auth if auth is not None else basic("reports"))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


# ------------------------------------------------------------------ answers
async def test_resource_server_sees_a_users_access_token(
        ctx: IdentityContext, http: httpx.AsyncClient, user: User, grant: Grant) -> None:
    token = access_token(ctx, "lms", user.id, grant.id)
    answer = await ask(http, token)
    assert answer.pop("jti")
    assert answer == {"active": True, "scope": "openid profile", "client_id": "lms",
                      "username": "ada", "token_type": "Bearer", "exp": ctx.now() + 3600,
                      "iat": ctx.now(), "sub": user.id, "aud": "lms", "iss": ISSUER,
                      "auth_time": 1_799_999_000}


async def test_a_client_sees_its_own_token_but_not_anothers(
        ctx: IdentityContext, http: httpx.AsyncClient, user: User, grant: Grant) -> None:
    own = access_token(ctx, "lms", user.id, grant.id)
    assert (await ask(http, own, basic("lms")))["active"] is True
    service = access_token(ctx, "reports", None, None, scope="roster.read")
    assert await ask(http, service, basic("lms")) == {"active": False}
    answer = await ask(http, service)  # reports itself
    assert answer["sub"] == "reports" and answer["aud"] == "https://api.example.edu"
    assert "username" not in answer


@pytest.mark.parametrize("token", ["", "cgat_unknown", "cgrt_unknown", "x.y.z"])
async def test_unknown_tokens_are_inactive(http: httpx.AsyncClient, token: str) -> None:
    response = await http.post(PATH, data={"token": token}, headers=basic("reports"))
    if token:
        assert response.json() == {"active": False}
    else:
        assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_disabled_user_and_expired_token_are_inactive(
        ctx: IdentityContext, http: httpx.AsyncClient, clock: Clock, user: User,
        grant: Grant) -> None:
    token = access_token(ctx, "lms", user.id, grant.id)
    await ctx.directory.update_user(user.id, disabled=True)
    assert await ask(http, token) == {"active": False}
    await ctx.directory.update_user(user.id, disabled=False)
    assert (await ask(http, token))["active"] is True
    clock.advance(3600)
    assert await ask(http, token) == {"active": False}


async def test_revoked_tokens_are_inactive(ctx: IdentityContext, http: httpx.AsyncClient,
                                           user: User, grant: Grant) -> None:
    from_grant = access_token(ctx, "lms", user.id, grant.id)
    await revoke_grant(ctx, grant.id)
    assert await ask(http, from_grant) == {"active": False}
    lone = access_token(ctx, "reports", None, None, scope="roster.read")
    info = await validate_access_token(ctx, lone)
    assert info is not None and (await ask(http, lone))["active"] is True
    await revoke_access_token(ctx, info)
    assert await ask(http, lone) == {"active": False}


async def test_opaque_access_token(ctx: IdentityContext, keyring: Keyring,
                                   http: httpx.AsyncClient, user: User, grant: Grant) -> None:
    data = identity_config().model_dump(exclude_none=True)["clients"]
    data[0]["access_token_format"] = "opaque"
    ctx.update(sealed(identity_config(clients=[*data, JWT_CLIENT, POST_CLIENT]), keyring))
    client = ctx.client("lms")
    assert client is not None
    token, info = mint_access_token(ctx, client, user_id=user.id, scope="openid",
                                    grant_id=grant.id, auth_time=None)
    await store_opaque(ctx, token, info)
    answer = await ask(http, token, token_type_hint="access_token")
    assert answer["active"] is True and answer["jti"] == info.token_id
    assert answer["token_type"] == "Bearer" and answer["username"] == "ada"


async def test_refresh_tokens_until_used_or_revoked(
        ctx: IdentityContext, http: httpx.AsyncClient, user: User, grant: Grant) -> None:
    refresh = "cgrt_introspected-refresh-token"
    await ctx.directory.save_refresh_token(refresh, grant, ctx.now(), ctx.now() + 86400)
    answer = await ask(http, refresh, token_type_hint="refresh_token")
    assert answer == {"active": True, "scope": grant.scope, "client_id": "lms",
                      "token_type": "refresh_token", "exp": ctx.now() + 86400,
                      "iat": ctx.now(), "sub": user.id, "aud": "lms", "iss": ISSUER,
                      "username": "ada"}
    assert (await ask(http, refresh))["active"] is True  # without a hint too
    assert await ask(http, refresh, basic("lms")) != {"active": False}
    await ctx.directory.use_refresh_token(refresh, ctx.now())  # rotated
    assert await ask(http, refresh) == {"active": False}

    second = "cgrt_second-refresh-token"
    await ctx.directory.save_refresh_token(second, grant, ctx.now(), ctx.now() + 86400)
    await revoke_grant(ctx, grant.id)
    assert await ask(http, second) == {"active": False}


# ------------------------------------------------------------------ client authentication
async def test_authentication_is_required(ctx: IdentityContext, http: httpx.AsyncClient,
                                          user: User, grant: Grant) -> None:
    token = access_token(ctx, "lms", user.id, grant.id)
    for headers, form in [({}, {}), (basic("reports", "wrong-secret-0123456789"), {}),
                          ({}, {"client_id": "mobile"}),  # public: may not introspect
                          ({}, {"client_id": "reports"}),
                          (basic("nobody", "nobody-secret-0123456789"), {})]:
        response = await http.post(PATH, data={"token": token, **form}, headers=headers)
        assert response.status_code == 401, (headers, form)
        assert response.json()["error"] == "invalid_client"
        assert "active" not in response.json()
    wrong = await http.post(PATH, data={"token": token}, headers=basic("reports", "x:y"))
    assert wrong.headers["www-authenticate"].startswith("Basic")


async def test_only_the_registered_method_is_accepted(
        ctx: IdentityContext, http: httpx.AsyncClient, user: User, grant: Grant) -> None:
    token = access_token(ctx, "reports", None, None, scope="roster.read")
    # reports is registered for client_secret_basic: its secret in the form is refused
    response = await http.post(PATH, data={"token": token, "client_id": "reports",
                                           "client_secret": SECRETS["reports"]})
    assert response.status_code == 401
    portal = await http.post(PATH, data={"token": token, "client_id": "portal",
                                         "client_secret": POST_CLIENT["client_secret"]})
    assert portal.status_code == 200 and portal.json() == {"active": False}
    both = await http.post(PATH, headers=basic("reports"),
                           data={"token": token, "client_id": "portal",
                                 "client_secret": POST_CLIENT["client_secret"]})
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"


def real_time(clock: Clock) -> None:
    """Authlib signs assertions with the real time (``exp`` = ``iat`` + 3600, the most
    allowed): the clock is set a second ahead of it, so that the real clock ticking
    over before a signing cannot make an assertion look valid for longer than that."""
    clock.now = float(int(time.time()) + 1)


def assertion(audience: str = ISSUER + "/oauth2/token", key: Key = CLIENT_KEY,
              alg: str = "RS256", **claims: Any) -> str:
    signed = private_key_jwt_sign(key.as_dict(private=True), "svc", audience, alg=alg,
                                  claims=claims or None, header={"alg": alg, "kid": key.kid})
    return signed.decode() if isinstance(signed, bytes) else str(signed)


async def test_private_key_jwt_once_per_assertion(
        ctx: IdentityContext, http: httpx.AsyncClient, clock: Clock) -> None:
    real_time(clock)
    token = access_token(ctx, "svc", None, None, scope="roster.read")
    form = {"token": token, "client_assertion": assertion(),
            "client_assertion_type": ASSERTION_TYPE}
    first = await http.post(PATH, data=form)
    assert first.status_code == 200 and first.json()["client_id"] == "svc"
    replay = await http.post(PATH, data=form)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
    for_the_issuer = {**form, "client_assertion": assertion(ISSUER)}
    assert (await http.post(PATH, data=for_the_issuer)).status_code == 200
    for bad in (assertion("https://elsewhere.example/token"),
                assertion(iss="lms"), assertion(exp=ctx.now() - 60)):
        response = await http.post(PATH, data={**form, "client_assertion": bad})
        assert response.status_code == 401, bad
    stranger = RSAKey.generate_key(2048, parameters={"kid": "svc-1"}, private=True)
    forged = private_key_jwt_sign(stranger.as_dict(private=True), "svc",
                                  ISSUER + "/oauth2/token", header={"alg": "RS256",
                                                                    "kid": "svc-1"})
    response = await http.post(PATH, data={**form, "client_assertion": str(forged)})
    assert response.status_code == 401


async def test_malformed_requests(http: httpx.AsyncClient) -> None:
    as_json = await http.post(PATH, json={"token": "t"}, headers=basic("reports"))
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    repeated = await http.post(PATH, content=b"token=a&token=b", headers={
        **basic("reports"), "content-type": "application/x-www-form-urlencoded"})
    assert repeated.status_code == 400
    assert (await http.get(PATH)).status_code == 405


@pytest.mark.parametrize("alg", discovery.ASSERTION_ALGORITHMS)
async def test_every_advertised_assertion_algorithm_works(
        ctx: IdentityContext, http: httpx.AsyncClient, clock: Clock, alg: str) -> None:
    real_time(clock)
    token = access_token(ctx, "svc", None, None, scope="roster.read")
    key = CLIENT_KEY if alg.startswith("RS") else CLIENT_EC_KEY
    response = await http.post(PATH, data={
        "token": token, "client_assertion": assertion(key=key, alg=alg),
        "client_assertion_type": ASSERTION_TYPE})
    assert response.status_code == 200, response.text
    assert response.json()["active"] is True

"""Fixtures of the ClassLink sandbox tests: the identity context with the sandbox on,
two clients (``lms``: client_secret_basic, ``classic``: client_secret_post, the way
ClassLink's libraries authenticate), an HTTP client over the whole identity app, and
a code issued the way the authorization endpoint issues it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from identity_harness import sealed
from sandbox_kit import CALLBACK, CLASSIC_CALLBACK, SECRETS, sandbox_config

from campusgate.identity.app import identity_routes
from campusgate.identity.classlink.authorize import translate_authorization
from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.oauth.authorization import issue_code, validate_authorization_request
from campusgate.keyring import Keyring


@pytest.fixture
def sandbox_ctx(identity_ctx: IdentityContext, keyring: Keyring) -> IdentityContext:
    identity_ctx.update(sealed(sandbox_config(), keyring))
    return identity_ctx


@pytest.fixture
def http(sandbox_ctx: IdentityContext, identity_client: Any) -> httpx.AsyncClient:
    client: httpx.AsyncClient = identity_client(identity_routes(""))
    return client


@pytest.fixture
async def ben(sandbox_ctx: IdentityContext) -> User:
    return await sandbox_ctx.directory.create_user(
        "ben", email="ben@lincoln.example.edu", email_verified=True, name="Ben Ng",
        given_name="Ben", family_name="Ng", claims={"locale": "es"})


IssueCode = Callable[..., Awaitable[str]]


@pytest.fixture
def issue(sandbox_ctx: IdentityContext) -> IssueCode:
    """``await issue(user, client_id=..., scope=..., **params)``: a code, issued for a
    ClassLink-shaped request as the authorization endpoint would."""

    async def make(user: User, client_id: str = "classic", scope: str = "profile",
                   **params: str) -> str:
        callback = CLASSIC_CALLBACK if client_id == "classic" else CALLBACK
        query = {"client_id": client_id, "redirect_uri": callback,
                 "response_type": "code", "scope": scope, **params}
        sandbox = sandbox_ctx.config.classlink_sandbox
        assert sandbox is not None
        request = await validate_authorization_request(
            sandbox_ctx, dict(translate_authorization(query.items(), sandbox)))
        response = await issue_code(sandbox_ctx, request, user, sandbox_ctx.now(), None)
        return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]

    return make


Bearer = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture
def bearer(http: httpx.AsyncClient, issue: IssueCode) -> Bearer:
    """``await bearer(user, scope="profile")``: request headers carrying an access
    token got the ClassLink way (code, then the token form)."""

    async def make(user: User, scope: str = "profile") -> dict[str, str]:
        code = await issue(user, scope=scope)
        answer = await http.post("/oauth2/v2/token", data={
            "code": code, "client_id": "classic", "client_secret": SECRETS["classic"]})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"bearer {answer.json()['access_token']}"}

    return make

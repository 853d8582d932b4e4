"""Helpers of the OAuth tests (``from oauth_harness import ...``): an authorization
endpoint that approves every valid request for a user (the browser side is helper C's and
tested in ``tests/identity/pages``), next to the real token endpoint."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from identity_harness import ISSUER, SECRETS
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.oauth.authorization import (
    AuthorizationError,
    issue_code,
    validate_authorization_request,
)

AppClient = Callable[[Sequence[BaseRoute]], httpx.AsyncClient]

SID = "sid-test-session"
AUTH_TIME_AGO = 5


def pkce_pair() -> tuple[str, str]:
    """A code_verifier and its S256 code_challenge (RFC 7636 4.1, 4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def approving_as(user: User) -> Callable[[Request], Awaitable[Response]]:
    """An authorization endpoint where ``user`` is always signed in and agrees."""

    async def authorize(request: Request) -> Response:
        ctx: IdentityContext = request.app.state.identity
        try:
            req = await validate_authorization_request(ctx, request.query_params)
        except AuthorizationError as exc:
            return exc.response(ctx)
        return await issue_code(ctx, req, user, ctx.now() - AUTH_TIME_AGO, SID)

    return authorize


@dataclass
class Flow:
    """Drives the authorization and token endpoints like a client would."""

    http: httpx.AsyncClient
    ctx: IdentityContext
    user: User

    async def authorize(self, **params: str) -> httpx.Response:
        return await self.http.get("/oauth2/authorize", params=params)

    async def code(self, client_id: str = "lms", scope: str = "openid profile email",
                   redirect_uri: str = "https://lms.example.edu/callback",
                   **params: str) -> str:
        response = await self.authorize(response_type="code", client_id=client_id,
                                        redirect_uri=redirect_uri, scope=scope, **params)
        assert response.status_code == 303, response.text
        query = query_of(response.headers["location"])
        assert "code" in query, query
        return query["code"]

    async def token(self, data: Mapping[str, str], *, client_id: str | None = "lms",
                    secret: str | None = None) -> httpx.Response:
        headers = {}
        if client_id is not None and (secret or client_id in SECRETS):
            headers = basic(client_id, secret or SECRETS[client_id])
        return await self.http.post("/oauth2/token", data=dict(data), headers=headers)

    async def redeem(self, code: str, client_id: str = "lms",
                     redirect_uri: str = "https://lms.example.edu/callback",
                     **extra: str) -> httpx.Response:
        data = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": redirect_uri, **extra}
        if client_id not in SECRETS:
            data["client_id"] = client_id
        return await self.token(data, client_id=client_id)

    async def tokens(self, client_id: str = "lms", scope: str = "openid profile email",
                     **params: str) -> dict[str, Any]:
        """A full code flow: the token response body."""
        code = await self.code(client_id=client_id, scope=scope, **params)
        response = await self.redeem(code, client_id=client_id)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def refresh(self, refresh_token: str, client_id: str = "lms",
                      **extra: str) -> httpx.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
        return await self.token(data, client_id=client_id)


__all__ = ["AUTH_TIME_AGO", "ISSUER", "SID", "AppClient", "Flow", "approving_as", "basic",
           "pkce_pair", "query_of"]

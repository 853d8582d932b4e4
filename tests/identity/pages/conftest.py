"""Fixtures of the page tests: a user, an HTTP client over the browser-side routes,
and a login transaction to sign in for."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import httpx
import pytest
from pages_harness import CALLBACK, PASSWORD
from starlette.routing import BaseRoute

from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.pages import login, logout, transaction
from campusgate.identity.pages.transaction import Transaction


@pytest.fixture
async def alice(identity_ctx: IdentityContext) -> User:
    return await identity_ctx.directory.create_user(
        "alice", PASSWORD, email="alice@example.edu", email_verified=True,
        name="Alice Liddell")


@pytest.fixture
def page_client(identity_client: Callable[[Sequence[BaseRoute]], httpx.AsyncClient]
                ) -> httpx.AsyncClient:
    """The login and logout pages (no authorization endpoint)."""
    return identity_client([*login.routes(""), *logout.routes("")])


@pytest.fixture
async def tx(identity_ctx: IdentityContext) -> Transaction:
    return await transaction.begin(identity_ctx, {
        "response_type": "code", "client_id": "lms", "redirect_uri": CALLBACK,
        "scope": "openid profile", "state": "s1"})

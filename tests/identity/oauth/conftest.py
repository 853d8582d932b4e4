"""Fixtures of the OAuth tests: a user, and an app whose authorization endpoint
approves every valid request for that user (the browser side is tested in
``tests/identity/pages``), next to the real token endpoint."""

from __future__ import annotations

import pytest
from oauth_harness import AppClient, Flow, approving_as
from starlette.routing import Route

from campusgate.identity.context import IdentityContext
from campusgate.identity.models import User
from campusgate.identity.oauth import token_endpoint


@pytest.fixture
async def alice(identity_ctx: IdentityContext) -> User:
    return await identity_ctx.directory.create_user(
        "alice", "correct horse battery staple", email="alice@example.edu",
        email_verified=True, name="Alice Liddell", given_name="Alice",
        family_name="Liddell")


@pytest.fixture
async def flow(identity_ctx: IdentityContext, identity_client: AppClient, alice: User) -> Flow:
    routes = [Route("/oauth2/authorize", approving_as(alice), methods=["GET"]),
              *token_endpoint.routes("")]
    return Flow(http=identity_client(routes), ctx=identity_ctx, user=alice)

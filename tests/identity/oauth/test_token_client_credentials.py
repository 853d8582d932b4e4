"""The client credentials grant (RFC 6749 4.4)."""

from __future__ import annotations

import jwt as pyjwt
from identity_harness import identity_config, sealed
from oauth_harness import Flow

from campusgate.identity.context import IdentityContext
from campusgate.identity.tokens import validate_access_token
from campusgate.keyring import Keyring

GRANT = {"grant_type": "client_credentials"}


async def test_service_gets_a_token_about_itself(flow: Flow) -> None:
    response = await flow.token(GRANT, client_id="reports")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert "refresh_token" not in body and "id_token" not in body
    assert body["scope"] == "roster.read"
    claims = pyjwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "reports" and claims["client_id"] == "reports"
    assert claims["aud"] == "https://api.example.edu"
    assert "gid" not in claims and "auth_time" not in claims
    info = await validate_access_token(flow.ctx, body["access_token"])
    assert info is not None and info.user_id is None and info.grant_id is None


async def test_scope_is_narrowed_to_what_the_client_may_have(
        flow: Flow, identity_ctx: IdentityContext, keyring: Keyring) -> None:
    config = identity_config(scopes=[{"name": "roster.read"}, {"name": "roster.write"}])
    config.clients[2] = config.clients[2].model_copy(
        update={"scopes": ["roster.read", "roster.write", "openid"]})
    identity_ctx.update(sealed(config, keyring))
    body = (await flow.token({**GRANT, "scope": "roster.write grades.read"},
                             client_id="reports")).json()
    assert body["scope"] == "roster.write"
    # no scope asked: every scope the client has, except those about a user
    body = (await flow.token(GRANT, client_id="reports")).json()
    assert body["scope"] == "roster.read roster.write"


async def test_no_allowed_scope_left_is_invalid_scope(flow: Flow) -> None:
    response = await flow.token({**GRANT, "scope": "openid grades.read"}, client_id="reports")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_only_clients_registered_for_it(flow: Flow) -> None:
    response = await flow.token(GRANT, client_id="lms")
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


async def test_public_clients_cannot_use_it(flow: Flow) -> None:
    response = await flow.token({**GRANT, "client_id": "mobile"}, client_id="mobile")
    assert response.json()["error"] == "invalid_client"

"""A login source's pages during a state-backend outage: the person sees a page that
says to try again (identity/app.py), not an OAuth error body meant for apps."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from identity_harness import ISSUER, identity_config, sealed
from redis_servers import free_port

from campusgate.identity.app import create_identity_app
from campusgate.identity.context import IdentityContext
from campusgate.identity.ephemeral import Ephemeral
from campusgate.state.redis import RedisState


@pytest.fixture
async def outage(identity_ctx: IdentityContext) -> AsyncIterator[httpx.AsyncClient]:
    """The identity app with a ClassLink source, its state backend a Redis that is not
    there."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    config = identity_config(sources=[{"type": "classlink", "client_id": "c",
                                       "client_secret": "s", "launchpad_url": nowhere,
                                       "api_url": nowhere}])
    state = RedisState(f"redis://127.0.0.1:{free_port()}/0", "cgtest:")
    ctx = dataclasses.replace(identity_ctx, config=sealed(config, identity_ctx.keyring),
                              ephemeral=Ephemeral(state))
    transport = httpx.ASGITransport(app=create_identity_app(ctx), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield client
    await state.close()


@pytest.mark.parametrize("path", [
    "/oauth2/sources/classlink/callback?state=abc&code=xyz",
    "/oauth2/sources/classlink/start?tx=abc",
])
async def test_a_source_sign_in_during_an_outage_gets_a_page(outage: httpx.AsyncClient,
                                                             path: str) -> None:
    answer = await outage.get(path)
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("text/html")
    assert "try again" in answer.text and "Traceback" not in answer.text

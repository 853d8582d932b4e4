"""What escapes an identity endpoint: a store outage is a 503 the client can retry, a
bug is a 500 without details (logged), a client that left is neither answered nor
logged."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from campusgate.identity.app import create_identity_app
from campusgate.identity.context import IdentityContext
from campusgate.proxy.request import ClientDisconnected
from campusgate.state.base import StateUnavailable


def failing(exc: Exception) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        raise exc

    return endpoint


@pytest.fixture
def client(identity_ctx: IdentityContext) -> httpx.AsyncClient:
    app = create_identity_app(identity_ctx)
    app.add_route("/outage", failing(StateUnavailable("redis down")))
    app.add_route("/db", failing(ConnectionRefusedError("connection refused")))
    app.add_route("/bug", failing(RuntimeError("secret internals")))
    app.add_route("/gone", failing(ClientDisconnected()))
    # ahead of the real login page: the page's storage is down
    app.router.routes.insert(0, Route("/oauth2/login", failing(StateUnavailable("down"))))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://localhost:8080")


@pytest.mark.parametrize("path", ["/outage", "/db"])
async def test_a_store_outage_is_a_503_to_retry(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.get(path)
    assert answer.status_code == 503
    assert answer.json()["error"] == "temporarily_unavailable"
    assert answer.headers["retry-after"] == "5"


async def test_a_person_signing_in_during_an_outage_gets_a_page(
        client: httpx.AsyncClient) -> None:
    answer = await client.get("/oauth2/login?tx=abc")
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("text/html")
    assert "try again" in answer.text
    assert answer.headers["x-frame-options"] == "DENY"


async def test_a_bug_is_a_500_without_details(client: httpx.AsyncClient,
                                              caplog: pytest.LogCaptureFixture) -> None:
    answer = await client.get("/bug")
    assert answer.status_code == 500
    assert answer.json()["error"] == "server_error"
    assert "secret internals" not in answer.text
    assert any("secret internals" in r.getMessage() or r.exc_info for r in caplog.records
               if r.levelno >= logging.ERROR)


async def test_a_client_that_left_is_not_logged(client: httpx.AsyncClient,
                                                caplog: pytest.LogCaptureFixture) -> None:
    await client.get("/gone")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_every_endpoint_is_under_the_issuer(identity_ctx: IdentityContext) -> None:
    app = create_identity_app(identity_ctx)
    paths = {getattr(route, "path", "") for route in app.routes}
    assert "/oauth2/token" in paths and "/.well-known/openid-configuration" in paths

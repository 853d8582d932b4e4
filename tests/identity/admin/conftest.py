"""Fixtures of the identity admin tests: the admin API with the identity routers, over
a migrated SQLite store, and the identity directory it writes to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from identity_admin_harness import ISSUER, identity_admin_app

from campusgate.admin import StaticRuntime
from campusgate.admin.endpoints.identity_directory import close_identity_directory
from campusgate.identity.directory import IdentityDirectory
from campusgate.keyring import Keyring
from campusgate.store import ConfigStore


@pytest.fixture
async def store(tmp_path: Path, keyring: Keyring) -> AsyncIterator[ConfigStore]:
    opened = await ConfigStore.open(f"sqlite:///{tmp_path}/admin.db", keyring=keyring)
    yield opened
    await opened.close()


@pytest.fixture
def runtime() -> StaticRuntime:
    return StaticRuntime()


@pytest.fixture
async def token(store: ConfigStore) -> str:
    created = await store.ensure_admin_token()
    assert created is not None
    return created


@pytest.fixture
async def admin_app(store: ConfigStore, runtime: StaticRuntime) -> AsyncIterator[FastAPI]:
    app = identity_admin_app(store, runtime)
    yield app
    await close_identity_directory(app)


@pytest.fixture
async def anonymous(admin_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(admin_app),
                                 base_url="http://admin.test") as client:
        yield client


@pytest.fixture
async def client(anonymous: httpx.AsyncClient, token: str) -> httpx.AsyncClient:
    anonymous.headers["Authorization"] = f"Bearer {token}"
    return anonymous


@pytest.fixture
async def directory(admin_app: FastAPI, client: httpx.AsyncClient) -> IdentityDirectory:
    """The directory the admin app writes to (opened through its own dependency)."""
    assert (await client.get("/identity/users")).status_code == 200
    found: Any = admin_app.state.identity_directory
    assert isinstance(found, IdentityDirectory)
    return found


@pytest.fixture
async def identity(client: httpx.AsyncClient) -> dict[str, Any]:
    """The identity provider turned on, with an operator scope."""
    response = await client.put("/identity", json={
        "issuer": ISSUER, "scopes": [{"name": "roster.read", "claims": ["school"]}]})
    assert response.status_code == 201, response.text
    return dict(response.json())

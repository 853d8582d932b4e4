from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from campusgate.admin import StaticRuntime, create_admin_app
from campusgate.keyring import Keyring
from campusgate.store import ConfigStore


@pytest.fixture
def keyring() -> Keyring:
    """The installation secret the store seals credentials with."""
    return Keyring.generate()


@pytest.fixture
async def store(tmp_path: Path, keyring: Keyring) -> AsyncIterator[ConfigStore]:
    opened = await ConfigStore.open(f"sqlite:///{tmp_path}/admin.db", keyring=keyring)
    yield opened
    await opened.close()


@pytest.fixture
def runtime() -> StaticRuntime:
    return StaticRuntime(revision=7)


@pytest.fixture
async def token(store: ConfigStore) -> str:
    created = await store.ensure_admin_token()
    assert created is not None
    return created


@pytest.fixture
async def anonymous(store: ConfigStore, runtime: StaticRuntime) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the admin API that sends no token."""
    app = create_admin_app(store, runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://admin.test"
    ) as client:
        yield client


@pytest.fixture
async def client(anonymous: httpx.AsyncClient, token: str) -> httpx.AsyncClient:
    """A client of the admin API authenticated with a valid admin token."""
    anonymous.headers["Authorization"] = f"Bearer {token}"
    return anonymous

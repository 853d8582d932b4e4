"""Shared fixtures of the identity tests: a real context over a migrated SQLite
directory and the in-process state backend, an HTTP client over an app, and a real
browser (Debian's Chromium, driven by Playwright)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import httpx
import pytest
from identity_harness import ISSUER, Clock, identity_config, sealed
from playwright.async_api import Browser, async_playwright
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from campusgate.identity.context import IdentityContext
from campusgate.identity.directory import IdentityDirectory
from campusgate.identity.ephemeral import Ephemeral
from campusgate.identity.keys import KeyManager
from campusgate.keyring import Keyring
from campusgate.state.memory import MemoryState
from campusgate.store import ConfigStore

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium, fresh for each test (no cookies carried over)."""
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        await chromium.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(b"k" * 32)


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database at the newest schema, made once: each test gets a copy
    (migrating costs more than the rest of a test's setup)."""
    path = tmp_path_factory.mktemp("identity-template") / "identity.db"

    async def migrate() -> None:
        store = await ConfigStore.open(f"sqlite:///{path}")
        await store.close()

    asyncio.run(migrate())
    return path


@pytest.fixture
async def identity_ctx(tmp_path: Path, clock: Clock, keyring: Keyring,
                       migrated_database: Path) -> AsyncIterator[IdentityContext]:
    for source in migrated_database.parent.glob(migrated_database.name + "*"):
        shutil.copyfile(source, tmp_path / source.name)
    dsn = f"sqlite:///{tmp_path}/identity.db"
    directory = await IdentityDirectory.open(dsn, keyring)
    keys = KeyManager(directory, clock)
    await keys.ensure()
    ctx = IdentityContext(config=sealed(identity_config(), keyring), keyring=keyring,
                          directory=directory, ephemeral=Ephemeral(MemoryState()),
                          keys=keys, loop=asyncio.get_running_loop(), clock=clock)
    yield ctx
    await ctx.close()


AppClient = Callable[[Sequence[BaseRoute]], httpx.AsyncClient]


@pytest.fixture
async def identity_client(identity_ctx: IdentityContext) -> AsyncIterator[AppClient]:
    """``identity_client(routes)``: an HTTP client over a Starlette app of ``routes``
    with ``identity_ctx`` as its context (client address 203.0.113.7)."""
    clients: list[httpx.AsyncClient] = []

    def make(routes: Sequence[BaseRoute]) -> httpx.AsyncClient:
        app = Starlette(routes=list(routes))
        app.state.identity = identity_ctx
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
        client = httpx.AsyncClient(transport=transport, base_url=ISSUER)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()

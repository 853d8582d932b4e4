"""Shared fixtures of the identity tests: a real context over a migrated SQLite
directory and the in-process state backend, and an HTTP client over an app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import httpx
import pytest
from identity_harness import ISSUER, Clock, identity_config, sealed
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from campusgate.identity.context import IdentityContext
from campusgate.identity.directory import IdentityDirectory
from campusgate.identity.ephemeral import Ephemeral
from campusgate.identity.keys import KeyManager
from campusgate.keyring import Keyring
from campusgate.state.memory import MemoryState
from campusgate.store import ConfigStore


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(b"k" * 32)


@pytest.fixture
async def identity_ctx(tmp_path: Path, clock: Clock, keyring: Keyring
                       ) -> AsyncIterator[IdentityContext]:
    dsn = f"sqlite:///{tmp_path}/identity.db"
    store = await ConfigStore.open(dsn, keyring=keyring)  # migrates
    await store.close()
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

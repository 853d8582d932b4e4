"""Fixtures of the identity store tests: a migrated database per supported backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from campusgate.identity.directory import IdentityDirectory
from campusgate.keyring import Keyring
from campusgate.store import ConfigStore


@pytest.fixture(params=["sqlite", "postgresql"])
def identity_dsn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, once per supported backend (not yet migrated)."""
    # A plain fixture: pytest-asyncio cannot resolve pg_dsn from inside a running loop.
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/data/campusgate.db"
    else:
        yield request.getfixturevalue("pg_dsn")


@pytest.fixture
async def directory(identity_dsn: str, keyring: Keyring) -> AsyncIterator[IdentityDirectory]:
    """A directory over a freshly migrated database."""
    store = await ConfigStore.open(identity_dsn, keyring=keyring)
    await store.close()
    opened = await IdentityDirectory.open(identity_dsn, keyring)
    yield opened
    await opened.close()

"""Fixtures of the roster tests: a roster store on the identity test database
(SQLite, migrated), and one on a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from campusgate.identity.context import IdentityContext
from campusgate.identity.directory import IdentityDirectory
from campusgate.identity.roster.store import RosterStore
from campusgate.keyring import Keyring
from campusgate.store import ConfigStore


@pytest.fixture
def roster(identity_ctx: IdentityContext) -> RosterStore:
    return identity_ctx.roster


@pytest.fixture
async def pg_directory(pg_dsn: str, keyring: Keyring) -> AsyncIterator[IdentityDirectory]:
    """The identity directory on a fresh, migrated PostgreSQL database."""
    store = await ConfigStore.open(pg_dsn)
    await store.close()
    directory = await IdentityDirectory.open(pg_dsn, keyring)
    yield directory
    await directory.close()

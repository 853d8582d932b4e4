"""Fixtures of the observe tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from campusgate.store import ConfigStore


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The DSN of an empty database, once per supported backend."""
    # A plain fixture: pytest-asyncio cannot resolve pg_dsn from inside a running loop.
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/observe.db"
    else:
        yield request.getfixturevalue("pg_dsn")


@pytest.fixture
async def storage(empty_storage: str) -> AsyncIterator[str]:
    """The DSN of a database migrated to head, once per supported backend."""
    store = await ConfigStore.open(empty_storage)
    await store.close()
    yield empty_storage

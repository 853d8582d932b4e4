from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from campusgate.store import ConfigStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store_dsn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The DSN of an empty database, once per supported backend."""
    # A plain fixture: pytest-asyncio cannot resolve pg_dsn from inside a running loop.
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/data/campusgate.db"
    else:
        yield request.getfixturevalue("pg_dsn")


@pytest.fixture
async def store(store_dsn: str) -> AsyncIterator[ConfigStore]:
    opened = await ConfigStore.open(store_dsn)
    yield opened
    await opened.close()

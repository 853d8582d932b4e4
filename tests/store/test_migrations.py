from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from campusgate.store import ConfigStore
from campusgate.store.migrate import current_heads, head_revision
from campusgate.store.tables import metadata


async def test_open_migrates_to_head_and_models_match(store: ConfigStore) -> None:
    async with store._engine.connect() as conn:
        assert await conn.run_sync(current_heads) == (head_revision(),)
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        diff = await conn.run_sync(
            lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), metadata
            )
        )
    assert {"config_revisions", "settings", "admin_tokens", "alembic_version"} <= names
    assert diff == []


async def test_reopening_keeps_data(store_dsn: str) -> None:
    first = await ConfigStore.open(store_dsn)
    await first.set_setting("k", "v")
    await first.close()
    second = await ConfigStore.open(store_dsn)
    try:
        assert await second.get_setting("k") == "v"
    finally:
        await second.close()


async def test_relative_sqlite_path_creates_parent_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await ConfigStore.open("sqlite:///campusgate-data/nested/cg.db")
    await store.close()
    assert (tmp_path / "campusgate-data" / "nested" / "cg.db").is_file()


OPEN_AND_WRITE = """
import asyncio, sys
from campusgate.store import ConfigStore

async def main() -> None:
    store = await ConfigStore.open(sys.argv[1])
    await store.set_setting(sys.argv[2], "up")
    await store.close()

asyncio.run(main())
"""


async def test_processes_racing_to_open_a_fresh_database(store_dsn: str) -> None:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", OPEN_AND_WRITE, store_dsn, f"worker-{i}",
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(3)
    ]
    results = [await proc.communicate() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err for _, err in results]
    store = await ConfigStore.open(store_dsn)
    try:
        assert [await store.get_setting(f"worker-{i}") for i in range(3)] == ["up"] * 3
    finally:
        await store.close()

"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest

PG_ADMIN_DSN = os.environ.get(
    "CAMPUSGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
async def pg_dsn() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards.

    Fails when PostgreSQL is unreachable (PostgreSQL is a supported backend, so not
    testing it is an error), unless ``CAMPUSGATE_SKIP_PG=1`` is set.
    """
    if os.environ.get("CAMPUSGATE_SKIP_PG") == "1":
        pytest.skip("CAMPUSGATE_SKIP_PG=1")
    name = f"campusgate_test_{secrets.token_hex(6)}"
    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is unreachable at {PG_ADMIN_DSN} ({exc}); "
            "start it or set CAMPUSGATE_SKIP_PG=1"
        )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN_DSN.rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

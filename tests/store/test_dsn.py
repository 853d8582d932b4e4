from __future__ import annotations

import pytest

from campusgate.store.dsn import InvalidDsn, async_url, sqlite_path


@pytest.mark.parametrize(
    ("dsn", "driver", "database"),
    [
        ("sqlite:///data/cg.db", "sqlite+aiosqlite", "data/cg.db"),
        ("sqlite:////var/lib/cg.db", "sqlite+aiosqlite", "/var/lib/cg.db"),
        ("postgresql://cg@db.internal:5433/gw", "postgresql+asyncpg", "gw"),
        ("postgres://cg:pw@127.0.0.1/gw", "postgresql+asyncpg", "gw"),
    ],
)
def test_async_url(dsn: str, driver: str, database: str) -> None:
    url = async_url(dsn)
    assert (url.drivername, url.database) == (driver, database)


def test_postgres_keeps_credentials_and_port() -> None:
    url = async_url("postgres://cg:s3cret@db:5433/gw")
    assert (url.username, url.password, url.host, url.port) == ("cg", "s3cret", "db", 5433)


@pytest.mark.parametrize(
    "dsn", ["sqlite:///:memory:", "sqlite://", "mysql://x@y/z", "not a dsn"]
)
def test_rejected(dsn: str) -> None:
    with pytest.raises(InvalidDsn):
        async_url(dsn)


def test_sqlite_path() -> None:
    assert str(sqlite_path(async_url("sqlite:///a/b.db"))) == "a/b.db"
    assert sqlite_path(async_url("postgresql://x@y/z")) is None

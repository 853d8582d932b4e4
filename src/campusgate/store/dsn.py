"""Turn the storage DSN operators write into the async SQLAlchemy URL campusgate uses.

``sqlite:///relative/path.db`` (relative to the working directory),
``sqlite:////absolute/path.db``, ``postgresql://user@host:port/db`` and
``postgres://...`` are accepted; drivers are chosen here (aiosqlite, asyncpg).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["InvalidDsn", "async_url", "sqlite_path"]


class InvalidDsn(ValueError):
    """The storage DSN is not one campusgate can open."""


def async_url(dsn: str) -> URL:
    """The SQLAlchemy URL, with its async driver, for a storage DSN."""
    scheme = dsn.partition(":")[0].lower()
    try:
        url = make_url(dsn)
    except ArgumentError as exc:
        raise InvalidDsn(f"cannot parse storage DSN: {exc}") from None
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        if not url.database or url.database == ":memory:":
            raise InvalidDsn("sqlite storage needs a file: sqlite:///path/to/campusgate.db")
        return url.set(drivername="sqlite+aiosqlite")
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        return url.set(drivername="postgresql+asyncpg")
    raise InvalidDsn(f"unsupported storage DSN scheme {scheme!r}: use sqlite:/// or postgresql://")


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for other backends."""
    if url.get_backend_name() != "sqlite" or url.database is None:
        return None
    return Path(url.database)

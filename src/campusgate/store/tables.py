"""The store's tables (SQLAlchemy Core).  Migrations in ``migrations/versions`` create
them; ``tests/store/test_migrations.py`` checks the two agree."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["admin_tokens", "config_revisions", "metadata", "settings"]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: One row per revision of the entities.  ``revision`` is assigned by the writer as
#: latest + 1, so two racing writers collide on the primary key instead of both
#: succeeding: that collision is how optimistic concurrency is enforced.
config_revisions = Table(
    "config_revisions",
    metadata,
    Column("revision", Integer, primary_key=True, autoincrement=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("source", String(200), nullable=False),
    Column("entities", Text, nullable=False),
)

#: Small key/value settings of the installation.
settings = Table(
    "settings",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Admin API tokens: only a SHA-256 of each token is kept, plus a short visible prefix
#: so operators can tell tokens apart.  Revoked tokens stay, with ``revoked_at`` set.
admin_tokens = Table(
    "admin_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prefix", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

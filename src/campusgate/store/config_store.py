"""The configuration store: revisioned entities, settings and admin tokens.

One :class:`ConfigStore` per process (or worker); it owns an async engine and its
pool.  Every revision of the entities is kept as canonical JSON; the newest is what
the gateway runs.  Revisions are numbered 1, 2, 3... without gaps.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from campusgate.config.model import Entities
from campusgate.config.sealing import is_sealed, seal
from campusgate.keyring import Keyring
from campusgate.store import tokens
from campusgate.store.dsn import async_url, sqlite_path
from campusgate.store.engine import create_engine, enable_sqlite_wal, writer
from campusgate.store.revision_probe import RevisionReader, revision_reader
from campusgate.store.tables import admin_tokens, config_revisions, settings

__all__ = ["ConfigStore", "RevisionConflict", "RevisionInfo", "canonical_json"]

log = logging.getLogger(__name__)

_SAVE_ATTEMPTS = 20


class RevisionConflict(Exception):
    """The latest revision is not the one the writer read: someone else wrote first."""

    def __init__(self, expected: int, actual: int | None) -> None:
        self.expected = expected
        self.actual = actual
        found = "a newer one" if actual is None else str(actual)
        super().__init__(f"expected revision {expected}, found {found}")


@dataclass(frozen=True)
class RevisionInfo:
    """One entry of the revision history."""

    revision: int
    created_at: datetime
    source: str


def canonical_json(entities: Entities) -> str:
    """The form revisions are stored and compared in: sorted keys, no whitespace."""
    return json.dumps(
        entities.model_dump(mode="json"), sort_keys=True, separators=(",", ":"),
        ensure_ascii=False,
    )


class _Collision(Exception):
    """Another writer took the revision number we were inserting."""


class ConfigStore:
    """Revisioned entities, settings and admin tokens in SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine, url: URL | None = None,
                 keyring: Keyring | None = None) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self.url = url if url is not None else engine.url
        self.keyring = keyring

    @classmethod
    async def open(cls, dsn: str, *, migrate: bool = True,
                   keyring: Keyring | None = None) -> ConfigStore:
        """Connect to ``dsn``; migrate the schema to the newest version unless told not
        to (workers are started after the parent migrated, and skip loading Alembic)."""
        url = async_url(dsn)
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            await enable_sqlite_wal(path)
        engine = create_engine(url)
        if migrate:
            from campusgate.store.migrate import upgrade_to_head

            try:
                await upgrade_to_head(writer(engine))
            except BaseException:
                await engine.dispose()
                raise
        return cls(engine, url, keyring)

    def revision_reader(self) -> RevisionReader:
        """A cheap way to poll :meth:`latest_revision` (see ``revision_probe.py``)."""
        return revision_reader(self.url.render_as_string(hide_password=False))

    async def close(self) -> None:
        await self._engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        """The store's engine, for readers of tables the store does not wrap (log
        search, analytics): one pool per process, closed with the store."""
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    # ------------------------------------------------------------ revisions

    async def latest_revision(self) -> int:
        """The newest revision number, 0 when nothing was saved yet (one index lookup)."""
        async with self._engine.connect() as conn:
            value = await conn.scalar(select(func.max(config_revisions.c.revision)))
        return int(value or 0)

    async def latest(self) -> tuple[int, Entities]:
        """The newest revision and its entities; ``(0, Entities())`` when empty."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(config_revisions.c.revision, config_revisions.c.entities)
                    .order_by(config_revisions.c.revision.desc())
                    .limit(1)
                )
            ).first()
        if row is None:
            return 0, Entities()
        return row.revision, Entities.model_validate_json(row.entities)

    async def get_revision(self, revision: int) -> Entities | None:
        async with self._engine.connect() as conn:
            stored = await conn.scalar(
                select(config_revisions.c.entities).where(
                    config_revisions.c.revision == revision
                )
            )
        return None if stored is None else Entities.model_validate_json(stored)

    async def save(self, entities: Entities, source: str) -> tuple[int, bool]:
        """Store ``entities`` as a new revision unless they equal the latest.

        Returns ``(revision, changed)``: the new revision, or the latest one unchanged.
        Plaintext credential secrets are sealed first (see ``config/sealing.py``).
        """
        entities = await self.seal(entities)
        for _ in range(_SAVE_ATTEMPTS):
            try:
                return await self._save(entities, source, None)
            except _Collision:
                continue
        raise RevisionConflict(await self.latest_revision(), None)

    async def save_if(
        self, entities: Entities, source: str, expected_revision: int
    ) -> tuple[int, bool]:
        """Like :meth:`save`, but raise :class:`RevisionConflict` unless the latest
        revision is still ``expected_revision``."""
        entities = await self.seal(entities)
        try:
            return await self._save(entities, source, expected_revision)
        except _Collision:
            raise RevisionConflict(expected_revision, None) from None

    async def seal(self, entities: Entities) -> Entities:
        """``entities`` with every plaintext secret sealed, reusing the latest
        revision's sealed values where they still match."""
        if is_sealed(entities):
            return entities
        if self.keyring is None:
            raise ValueError("this store has no keyring: it cannot seal credential secrets")
        _, previous = await self.latest()
        # argon2id hashing takes tens of milliseconds per password: not on the loop
        return await asyncio.to_thread(seal, entities, self.keyring, previous)

    async def _save(
        self, entities: Entities, source: str, expected: int | None
    ) -> tuple[int, bool]:
        document = canonical_json(entities)
        try:
            async with self._writer.begin() as conn:
                row = (
                    await conn.execute(
                        select(config_revisions.c.revision, config_revisions.c.entities)
                        .order_by(config_revisions.c.revision.desc())
                        .limit(1)
                    )
                ).first()
                latest = 0 if row is None else int(row.revision)
                if expected is not None and latest != expected:
                    raise RevisionConflict(expected, latest)
                latest_document = canonical_json(Entities()) if row is None else row.entities
                if document == latest_document:
                    return latest, False
                await conn.execute(
                    insert(config_revisions).values(
                        revision=latest + 1,
                        created_at=_now(),
                        source=source[:200],
                        entities=document,
                    )
                )
        except IntegrityError:
            raise _Collision() from None
        return latest + 1, True

    async def history(self, limit: int = 50) -> list[RevisionInfo]:
        """The newest ``limit`` revisions, newest first."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        config_revisions.c.revision,
                        config_revisions.c.created_at,
                        config_revisions.c.source,
                    )
                    .order_by(config_revisions.c.revision.desc())
                    .limit(limit)
                )
            ).all()
        return [RevisionInfo(r.revision, _aware(r.created_at), r.source) for r in rows]

    # ------------------------------------------------------------ settings

    async def get_setting(self, key: str) -> str | None:
        async with self._engine.connect() as conn:
            value = await conn.scalar(select(settings.c.value).where(settings.c.key == key))
        return None if value is None else str(value)

    async def set_setting(self, key: str, value: str) -> None:
        dialect: Any = postgresql if self.dialect == "postgresql" else sqlite
        stmt = dialect.insert(settings).values(key=key, value=value, updated_at=_now())
        stmt = stmt.on_conflict_do_update(
            index_elements=[settings.c.key],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        async with self._writer.begin() as conn:
            await conn.execute(stmt)

    # ------------------------------------------------------------ admin tokens

    async def ensure_admin_token(self) -> str | None:
        """Create the first admin token if there is none; return its plaintext (to be
        shown once) or None when an active token already exists."""
        async with self._writer.begin() as conn:
            await self._lock_tokens(conn)
            active = await conn.scalar(
                select(func.count()).select_from(admin_tokens).where(
                    admin_tokens.c.revoked_at.is_(None)
                )
            )
            if active:
                return None
            return await self._insert_token(conn)

    async def rotate_admin_token(self) -> str:
        """Revoke every admin token and create a new one; return its plaintext."""
        async with self._writer.begin() as conn:
            await self._lock_tokens(conn)
            await conn.execute(
                update(admin_tokens)
                .where(admin_tokens.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
            return await self._insert_token(conn)

    async def verify_admin_token(self, token: str) -> bool:
        """Whether ``token`` is an active admin token (constant-time hash comparison)."""
        if not token.startswith(tokens.TOKEN_PREFIX):
            return False
        digest = tokens.hash_token(token)
        async with self._engine.connect() as conn:
            stored = (
                await conn.scalars(
                    select(admin_tokens.c.token_hash).where(
                        admin_tokens.c.revoked_at.is_(None),
                        admin_tokens.c.prefix == tokens.visible_prefix(token),
                    )
                )
            ).all()
        matched = False
        for candidate in stored:
            matched |= tokens.hashes_equal(digest, candidate)
        return matched

    async def _lock_tokens(self, conn: AsyncConnection) -> None:
        # SQLite is already serialized by BEGIN IMMEDIATE; PostgreSQL needs a lock so
        # that two processes starting together do not both create a first token.
        if self.dialect == "postgresql":
            await conn.execute(text("LOCK TABLE admin_tokens IN SHARE ROW EXCLUSIVE MODE"))

    async def _insert_token(self, conn: AsyncConnection) -> str:
        token = tokens.new_token()
        await conn.execute(
            insert(admin_tokens).values(
                prefix=tokens.visible_prefix(token),
                token_hash=tokens.hash_token(token),
                created_at=_now(),
            )
        )
        log.info("created admin token %s...", tokens.visible_prefix(token))
        return token


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every timestamp is written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

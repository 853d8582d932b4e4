"""Writing a validated bundle into a tenant: one transaction, batched statements.

Rows are matched on (tenant, sourcedId), so a row keeps its integer ``id`` across
re-imports: existing rows are updated in place (only those whose values changed: a
nightly re-import of a big district is mostly reads), new ones inserted.  A ``bulk`` file is
the whole truth for its kind -- the tenant's rows it does not list are deleted; a
``delta`` file deletes the rows it marks ``tobedeleted`` and upserts the rest.  Then
every person gets their local account (``accounts.py``) in the same transaction, so a
refused account (a username collision) rolls the whole import back.  The transaction
first touches the tenant's row, which locks it: removing the tenant (``removal.py``)
waits for a running import, and an import whose tenant was removed meanwhile is
refused, having written nothing.

Passwords from users.csv are hashed (argon2id, slow by design) on threads *before* the
transaction starts, so the write lock is not held while hashing.  Only a person
without an account, or whose account has no password yet, gets the bundle's password:
a re-import never resets a password the person has since changed.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from campusgate.identity.roster import accounts, rows
from campusgate.identity.roster.bundle import (
    Bundle,
    ImportRefused,
    Problem,
    Progress,
    ProgressCallback,
)
from campusgate.identity.roster.rows import Kind, Record
from campusgate.keyring import Keyring
from campusgate.store.tables import identity_users, roster_tenants, roster_users

__all__ = ["ImportResult", "apply", "now"]

def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ImportResult:
    """What an import changed: per kind, how many rows were created, updated (their
    values changed) and deleted; and the accounts created, updated and disabled."""

    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated,
                "deleted": self.deleted, "accounts": self.accounts}


def _report(progress: ProgressCallback | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(Progress(stage, done, total))


async def apply(engine: AsyncEngine, writer: AsyncEngine, keyring: Keyring | None,
                tenant_id: int, bundle: Bundle,
                progress: ProgressCallback | None = None) -> ImportResult:
    """Import ``bundle`` into tenant ``tenant_id`` (see the module docstring)."""
    hashes = await _hash_passwords(engine, keyring, tenant_id, bundle, progress)
    result = ImportResult()
    stamp = now()
    async with writer.begin() as conn:
        # Touching the tenant row first locks it (PostgreSQL): a removal of the tenant
        # waits for this import, or this import finds the tenant gone.
        touched = await conn.execute(update(roster_tenants)
                                     .where(roster_tenants.c.id == tenant_id)
                                     .values(updated_at=stamp))
        if touched.rowcount == 0:
            raise ImportRefused([Problem("bundle", 0, "the tenant was removed")])
        for kind in rows.KINDS:
            records = bundle.records.get(kind.name)
            if records is None:
                continue
            await _write_kind(conn, kind, tenant_id, records,
                              bundle.modes.get(kind.name, "bulk"), stamp, result,
                              progress)
        result.accounts = await accounts.sync(conn, tenant_id, bundle, hashes, stamp,
                                              progress)
    return result


async def _write_kind(conn: AsyncConnection, kind: Kind, tenant_id: int,
                      records: list[Record], mode: str, stamp: datetime,
                      result: ImportResult, progress: ProgressCallback | None) -> None:
    table = kind.table
    stored: dict[str, dict[str, Any]] = {
        row.sourced_id: dict(row._mapping) for row in await conn.execute(
            select(table).where(table.c.tenant_id == tenant_id))}
    existing = {sid: int(row["id"]) for sid, row in stored.items()}
    if mode == "delta":
        doomed = [existing[r["sourced_id"]] for r in records
                  if r["status"] == "tobedeleted" and r["sourced_id"] in existing]
        kept = [r for r in records if r["status"] != "tobedeleted"]
    else:
        listed = {r["sourced_id"] for r in records}
        doomed = [row_id for sid, row_id in existing.items() if sid not in listed]
        kept = records
    new = [rows.values(r, tenant_id, stamp) for r in kept if r["sourced_id"] not in existing]
    changed = []
    for record in kept:
        before = stored.get(record["sourced_id"])
        if before is None:
            continue
        after = rows.values(record, tenant_id, stamp)
        if any(before[name] != value for name, value in after.items()
               if name != "updated_at"):
            changed.append({"_id": before["id"], **{f"v_{k}": v for k, v in after.items()}})
    total, done = len(new) + len(changed) + len(doomed), 0
    for chunk in rows.chunks(new):
        await conn.execute(insert(table), list(chunk))
        done += len(chunk)
        _report(progress, kind.name, done, total)
    if changed:
        statement = update(table).where(table.c.id == bindparam("_id")).values(
            {name[2:]: bindparam(name) for name in changed[0] if name != "_id"})
        for chunk in rows.chunks(changed):
            await conn.execute(statement, list(chunk))
            done += len(chunk)
            _report(progress, kind.name, done, total)
    if doomed and kind.name == "users":
        await accounts.disable_removed(conn, doomed, stamp)
    for chunk in rows.chunks(doomed):
        await conn.execute(delete(table).where(table.c.id.in_(chunk)))
        done += len(chunk)
        _report(progress, kind.name, done, total)
    if total == 0:
        _report(progress, kind.name, 0, 0)
    result.created[kind.name] = len(new)
    result.updated[kind.name] = len(changed)
    result.deleted[kind.name] = len(doomed)


async def _hash_passwords(engine: AsyncEngine, keyring: Keyring | None, tenant_id: int,
                          bundle: Bundle,
                          progress: ProgressCallback | None) -> dict[str, str]:
    """argon2id hashes of the bundle passwords that will be used, by sourcedId."""
    if keyring is None or not bundle.passwords:
        return {}
    users, accounts_ = roster_users.c, identity_users.c
    async with engine.connect() as conn:
        have = {row.sourced_id for row in await conn.execute(
            select(users.sourced_id)
            .join(identity_users, accounts_.id == users.account_id)
            .where(users.tenant_id == tenant_id, accounts_.password_hash.is_not(None)))}
    wanted = [(sid, pw) for sid, pw in bundle.passwords.items() if sid not in have]
    hashes: dict[str, str] = {}
    if not wanted:
        return hashes
    loop = asyncio.get_running_loop()
    _report(progress, "passwords", 0, len(wanted))
    with ThreadPoolExecutor(max(1, os.cpu_count() or 1),
                            thread_name_prefix="roster-passwords") as pool:
        futures = {sid: loop.run_in_executor(pool, keyring.hash_password, pw)
                   for sid, pw in wanted}
        for done, (sid, future) in enumerate(futures.items(), start=1):
            hashes[sid] = await future
            if done % 10 == 0 or done == len(wanted):
                _report(progress, "passwords", done, len(wanted))
    return hashes

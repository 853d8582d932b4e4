"""Removing a tenant: the district, all its roster rows, and its hold on accounts.

A district leaves (its contract ends, it was imported under the wrong name): the
operator removes its tenant, and in one transaction

- every row of the tenant (orgs, sessions, courses, classes, people, enrollments) and
  the tenant itself are deleted;
- the local accounts the roster linked to its people are **disabled**, and their
  ``roster`` claims (``accounts.ROSTER_KEYS``) removed; other claims are kept;
- accounts this tenant's imports made for people removed from its roster earlier
  (unlinked, already disabled, with this tenant's ``tenant_id`` claim) lose their
  roster claims too.  Without that, a tenant made later that happens to get the same
  integer id (SQLite reuses the highest one) would take them back on its first import.

By default accounts are not deleted: their consents, grants and the audit trail of who
signed in stay, and an operator can enable one again (a teacher who moves to another
district with campusgate keeps their sign-in).  Their usernames stay taken, so the
same people cannot be imported again.  With ``delete_accounts`` those accounts are
deleted instead -- with their consents and login-source links, their grants and
refresh tokens revoked -- which frees the usernames (a district imported under the
wrong tenant name, removed, and imported again).  A disabled account cannot sign in, and the
token (refresh), userinfo and introspection endpoints check ``disabled`` on every use;
a JWT access token checked offline by an API lasts until it expires.
An enabled account that merely carries the same ``tenant_id`` claim (one a login
source such as ClassLink provisioned, whose tenant ids are ClassLink's own) is left
alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from campusgate.identity.directory_rows import revoke_grants
from campusgate.identity.roster import rows
from campusgate.identity.roster.accounts import ROSTER_KEYS
from campusgate.store.tables import (
    identity_consents,
    identity_grants,
    identity_user_links,
    identity_users,
    roster_tenants,
    roster_users,
)

__all__ = ["TenantRemoval", "remove_tenant"]

_accounts = identity_users.c
_people = roster_users.c


@dataclass
class TenantRemoval:
    """What removing a tenant did: rows deleted per kind; accounts ``disabled`` (they
    were enabled) and ``claims_removed`` (all those kept), or ``deleted``."""

    tenant: str
    deleted: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "deleted": self.deleted, "accounts": self.accounts}


async def remove_tenant(conn: AsyncConnection, tenant_id: int, name: str,
                        stamp: datetime, *,
                        delete_accounts: bool = False) -> TenantRemoval | None:
    """Remove tenant ``tenant_id`` on ``conn`` (the caller's transaction); None when it
    is not there (any more).  The tenant row is deleted first, which on PostgreSQL
    waits for an import into it to finish (the import locks that row) and makes a
    later import find the tenant gone."""
    gone = await conn.execute(delete(roster_tenants).where(roster_tenants.c.id == tenant_id))
    if gone.rowcount == 0:
        return None
    removal = TenantRemoval(name)
    linked = select(_people.account_id).where(_people.tenant_id == tenant_id,
                                              _people.account_id.is_not(None))
    found = list((await conn.execute(
        select(_accounts.id, _accounts.claims, _accounts.disabled)
        .where(_accounts.id.in_(linked)))).all())
    found += await _former_accounts(conn, tenant_id)
    if delete_accounts:
        await _delete_accounts(conn, [a.id for a in found])
        removal.accounts = {"disabled": 0, "claims_removed": 0, "deleted": len(found)}
    else:
        await _disable_accounts(conn, found, stamp)
        removal.accounts = {"disabled": sum(1 for a in found if not a.disabled),
                            "claims_removed": len(found), "deleted": 0}
    for kind in reversed(rows.KINDS):
        result = await conn.execute(delete(kind.table)
                                    .where(kind.table.c.tenant_id == tenant_id))
        removal.deleted[kind.name] = int(result.rowcount)
    return removal


async def _disable_accounts(conn: AsyncConnection, found: list[Any],
                            stamp: datetime) -> None:
    changes = []
    for account in found:
        claims = {k: v for k, v in json.loads(account.claims).items()
                  if k not in ROSTER_KEYS}
        changes.append({"_id": account.id, "v_claims": json.dumps(claims)})
    statement = update(identity_users).where(_accounts.id == bindparam("_id")).values(
        claims=bindparam("v_claims"), disabled=True, updated_at=stamp)
    for chunk in rows.chunks(changes):
        await conn.execute(statement, list(chunk))


async def _delete_accounts(conn: AsyncConnection, account_ids: list[str]) -> None:
    """Delete the accounts as ``IdentityDirectory.delete_user`` does, and their links to
    login sources, on the removal's connection."""
    for chunk in rows.chunks(account_ids):
        ids = list(chunk)
        await conn.execute(delete(identity_users).where(_accounts.id.in_(ids)))
        await conn.execute(delete(identity_consents)
                           .where(identity_consents.c.user_id.in_(ids)))
        await conn.execute(delete(identity_user_links)
                           .where(identity_user_links.c.user_id.in_(ids)))
        await revoke_grants(conn, identity_grants.c.user_id.in_(ids))


async def _former_accounts(conn: AsyncConnection, tenant_id: int) -> list[Any]:
    """Disabled accounts no roster person links, with this tenant's ``tenant_id``
    claim: those its imports made for people it has since removed."""
    unlinked = ~exists().where(_people.account_id == _accounts.id)
    wanted = str(tenant_id)
    candidates = await conn.execute(
        select(_accounts.id, _accounts.claims, _accounts.disabled)
        .where(_accounts.disabled.is_(True), unlinked,
               _accounts.claims.contains(f'"{wanted}"')))
    return [row for row in candidates
            if json.loads(row.claims).get("tenant_id") == wanted]

"""Every active rostered person gets a local account that signs in as them.

The account (``identity_users``) is linked by ``roster_users.account_id`` and kept in
step with the roster on each import:

- username: the roster ``username``, lowercased.  A username already held by an
  account that is *not* this person's is a problem for that users.csv row and the
  import is refused (campusgate never takes over someone else's account);
- email (marked verified: the district vouches for it), given, family and full name;
- the ``roster`` scope's claims (``identity/claims.py: ROSTER_CLAIMS``): ``role``,
  ``tenant_id`` (the roster tenant id, a string), ``district_id`` and ``district``
  (the tenant's district org), ``school_ids`` (the person's orgs of type school),
  ``grades`` and ``class_ids`` (active enrollments); other claims are kept;
- disabled when the person is ``tobedeleted``, ``enabledUser`` false, or gone from the
  roster; enabled again when they come back (a person removed and later imported
  again gets back the account this tenant's import made for them: same username, no
  roster link, this tenant's ``tenant_id`` claim).  No account is made for a person
  who is not active.
- password: the bundle's, hashed beforehand (``importer.py``), only for an account
  that has none yet; otherwise people sign in through a login source.

Runs on the import's connection, inside its transaction.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from campusgate.identity.roster import rows
from campusgate.identity.roster.bundle import (
    Bundle,
    ImportRefused,
    Problem,
    Progress,
    ProgressCallback,
)
from campusgate.identity.roster.models import Person
from campusgate.store.tables import (
    identity_users,
    roster_enrollments,
    roster_orgs,
    roster_users,
)

__all__ = ["ROSTER_KEYS", "disable_removed", "roster_claims", "sync"]

_accounts = identity_users.c
_people = roster_users.c
_USERS = rows.kind("users")
#: The claims the roster owns on an account (replaced on import, removed with the
#: tenant); ``middle_name`` comes from the roster too.
ROSTER_KEYS = ("role", "tenant_id", "district_id", "district", "school_ids", "grades",
                "class_ids", "middle_name")


def roster_claims(person: Person, district: tuple[str, str] | None,
                  schools: set[str], class_ids: list[str]) -> dict[str, Any]:
    """The claims the roster gives ``person`` (absent values left out)."""
    claims: dict[str, Any] = {"role": person.role, "tenant_id": str(person.tenant_id)}
    if district is not None:
        claims["district_id"], claims["district"] = district
    school_ids = [sid for sid in person.org_sourced_ids if sid in schools]
    if school_ids:
        claims["school_ids"] = school_ids
    if person.grades:
        claims["grades"] = list(person.grades)
    if class_ids:
        claims["class_ids"] = class_ids
    if person.middle_name:
        claims["middle_name"] = person.middle_name
    return claims


async def sync(conn: AsyncConnection, tenant_id: int, bundle: Bundle,
               hashes: dict[str, str], stamp: datetime,
               progress: ProgressCallback | None) -> dict[str, int]:
    """Create, update or disable the tenant's accounts; counts by what was done."""
    people = [rows.model(_USERS, row) for row in await conn.execute(
        select(roster_users).where(_people.tenant_id == tenant_id))]
    orgs = (await conn.execute(select(roster_orgs.c.sourced_id, roster_orgs.c.name,
                                      roster_orgs.c.type).where(
        roster_orgs.c.tenant_id == tenant_id, roster_orgs.c.status == "active"))).all()
    district = next(((o.sourced_id, o.name) for o in orgs if o.type == "district"), None)
    schools = {o.sourced_id for o in orgs if o.type == "school"}
    classes: dict[str, list[str]] = defaultdict(list)
    enrolled = roster_enrollments.c
    for row in await conn.execute(
            select(enrolled.user_sourced_id, enrolled.class_sourced_id)
            .where(enrolled.tenant_id == tenant_id, enrolled.status == "active")
            .order_by(enrolled.class_sourced_id)):
        classes[row.user_sourced_id].append(row.class_sourced_id)
    holders = await _username_holders(conn, tenant_id)
    linked = {row.id: row for row in await _accounts_of(conn, people)}
    returning = {row.username: row
                 for row in await _former_accounts(conn, tenant_id, people, holders)}

    problems: list[Problem] = []
    new: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    disabled = 0
    for done, person in enumerate(people, start=1):
        if progress is not None and (done % 500 == 0 or done == len(people)):
            progress(Progress("accounts", done, len(people)))
        active = person.status == "active" and person.enabled_user
        account = linked.get(person.account_id) if person.account_id else None
        username = person.username.strip().lower()
        holder = holders.get(username)
        if (account is None and not active) or not username:
            continue
        if account is None and username in returning:  # they left and came back
            account = returning.pop(username)
            links.append({"_id": person.id, "v_account": account.id})
        if holder is not None and holder != (account.id if account else None):
            problems.append(Problem("users.csv", bundle.line("users", person.sourced_id),
                                    f"username {person.username!r} belongs to another "
                                    "account"))
            continue
        claims = roster_claims(person, district, schools, classes[person.sourced_id])
        fields = {"username": username, "email": (person.email or "").lower() or None,
                  "email_verified": bool(person.email), "name": person.name or None,
                  "given_name": person.given_name or None,
                  "family_name": person.family_name or None, "disabled": not active,
                  "updated_at": stamp}
        if account is None:
            account_id = str(uuid.uuid4())
            holders[username] = account_id
            new.append({"id": account_id, **fields, "claims": json.dumps(claims),
                        "password_hash": hashes.get(person.sourced_id),
                        "created_at": stamp})
            links.append({"_id": person.id, "v_account": account_id})
        else:
            kept = {k: v for k, v in json.loads(account.claims).items()
                    if k not in ROSTER_KEYS}
            holders.pop(account.username, None)
            holders[username] = account.id
            values = {**fields, "claims": json.dumps({**kept, **claims}),
                      "password_hash": account.password_hash or hashes.get(person.sourced_id)}
            if _differs(account, values):
                changed.append({"_id": account.id,
                                **{f"v_{k}": v for k, v in values.items()}})
                disabled += not active and not account.disabled
    if problems:
        raise ImportRefused(sorted(problems))
    await _write(conn, new, links, changed)
    return {"created": len(new), "updated": len(changed), "disabled": disabled}


def _differs(account: Any, values: dict[str, Any]) -> bool:
    """Whether writing ``values`` would change the stored ``account`` row."""
    for name, value in values.items():
        if name == "updated_at":
            continue
        stored = getattr(account, name)
        if name == "claims" and json.loads(stored) != json.loads(value):
            return True
        if name != "claims" and stored != value:
            return True
    return False


async def _write(conn: AsyncConnection, new: list[dict[str, Any]],
                 links: list[dict[str, Any]], changed: list[dict[str, Any]]) -> None:
    # Updates first: a renamed account frees its old username for a new one.
    if changed:
        statement = update(identity_users).where(_accounts.id == bindparam("_id")).values(
            {name[2:]: bindparam(name) for name in changed[0] if name != "_id"})
        for chunk in rows.chunks(changed):
            await conn.execute(statement, list(chunk))
    for chunk in rows.chunks(new):
        await conn.execute(insert(identity_users), list(chunk))
    link = update(roster_users).where(_people.id == bindparam("_id")).values(
        account_id=bindparam("v_account"))
    for chunk in rows.chunks(links):
        await conn.execute(link, list(chunk))


async def _username_holders(conn: AsyncConnection, tenant_id: int) -> dict[str, str]:
    """Account id by username, for the usernames the tenant's people want (one
    query: a join the database can hash, rather than big IN lists)."""
    wanted = select(func.lower(_people.username)).where(_people.tenant_id == tenant_id)
    result = await conn.execute(select(_accounts.username, _accounts.id)
                                .where(_accounts.username.in_(wanted)))
    return {row.username: row.id for row in result}


async def _former_accounts(conn: AsyncConnection, tenant_id: int, people: list[Person],
                           holders: dict[str, str]) -> list[Any]:
    """Accounts this tenant's import made for people since removed from its roster:
    holding a wanted username, linked to no roster person, with this tenant's
    ``tenant_id`` claim.  A person who comes back gets theirs again."""
    ours = {p.account_id for p in people}
    candidates = sorted(set(holders.values()) - ours)  # usually none
    unlinked = ~exists().where(_people.account_id == _accounts.id)
    found: list[Any] = []
    for chunk in rows.chunks(candidates):
        found.extend(row for row in (await conn.execute(
            select(identity_users).where(_accounts.id.in_(chunk), unlinked))).all()
            if json.loads(row.claims).get("tenant_id") == str(tenant_id))
    return found


async def _accounts_of(conn: AsyncConnection, people: list[Person]) -> list[Any]:
    ids = sorted({p.account_id for p in people if p.account_id})
    found: list[Any] = []
    for chunk in rows.chunks(ids):
        found.extend((await conn.execute(
            select(identity_users).where(_accounts.id.in_(chunk)))).all())
    return found


async def disable_removed(conn: AsyncConnection, person_ids: list[int],
                          stamp: datetime) -> None:
    """Disable the accounts of the people (row ids) about to leave the roster."""
    for chunk in rows.chunks(person_ids):
        account_ids = [row.account_id for row in await conn.execute(
            select(_people.account_id).where(_people.id.in_(chunk),
                                             _people.account_id.is_not(None)))]
        if account_ids:
            await conn.execute(update(identity_users).where(_accounts.id.in_(account_ids))
                               .values(disabled=True, updated_at=stamp))

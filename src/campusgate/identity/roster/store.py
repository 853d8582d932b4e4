"""The roster's durable store: tenants and their OneRoster rows, in the same SQL
database (SQLite or PostgreSQL) and on the same engine as the identity directory.

Reads serve the ClassLink-shaped sandbox and the admin API.  Single-row lookups
(:meth:`RosterStore.person`, :meth:`~RosterStore.org`, ...) answer whatever is stored,
``tobedeleted`` rows included, so a caller can tell "gone" from "never existed"; list
reads (:meth:`~RosterStore.orgs`, :meth:`~RosterStore.classes_of`,
:meth:`~RosterStore.members`) answer active rows only.

Writes go through :meth:`RosterStore.apply`: one transaction per import
(``importer.py``), so a failure anywhere leaves the roster as it was; and
:meth:`RosterStore.delete_tenant` removes a district in one transaction
(``removal.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from campusgate.identity.roster import importer, rows
from campusgate.identity.roster.bundle import Bundle, ProgressCallback
from campusgate.identity.roster.models import (
    AcademicSession,
    Course,
    Enrollment,
    Org,
    Person,
    SchoolClass,
    Tenant,
)
from campusgate.identity.roster.removal import TenantRemoval, remove_tenant
from campusgate.identity.roster.rows import Kind
from campusgate.keyring import Keyring
from campusgate.store.engine import writer
from campusgate.store.tables import (
    roster_classes,
    roster_enrollments,
    roster_orgs,
    roster_tenants,
    roster_users,
)

__all__ = ["ImportResult", "RosterStore", "TenantExists", "TenantRemoval"]

ImportResult = importer.ImportResult

_tenants = roster_tenants.c
_orgs = roster_orgs.c
_classes = roster_classes.c
_users = roster_users.c
_enrollments = roster_enrollments.c

_ORGS = rows.kind("orgs")
_SESSIONS = rows.kind("academicSessions")
_COURSES = rows.kind("courses")
_CLASSES = rows.kind("classes")
_USERS = rows.kind("users")
_ENROLLMENTS = rows.kind("enrollments")


class TenantExists(Exception):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a roster tenant named {name!r} already exists")


class RosterStore:
    """Async access to the roster tables.  ``keyring`` hashes the passwords a bundle
    gives its users (without one, bundle passwords are ignored)."""

    def __init__(self, engine: AsyncEngine, keyring: Keyring | None = None) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._keyring = keyring

    # ------------------------------------------------------------ tenants

    async def create_tenant(self, name: str) -> Tenant:
        """A new, empty tenant (``TenantExists`` when the name is taken)."""
        stamp = importer.now()
        try:
            async with self._writer.begin() as conn:
                result = await conn.execute(insert(roster_tenants).values(
                    name=name, created_at=stamp, updated_at=stamp))
                key = result.inserted_primary_key
                assert key is not None
                tenant_id = int(key[0])
        except IntegrityError:
            raise TenantExists(name) from None
        return Tenant(id=tenant_id, name=name)

    async def delete_tenant(self, name: str, *,
                            delete_accounts: bool = False) -> TenantRemoval | None:
        """Remove the tenant, all its rows and its hold on accounts (disabled, or with
        ``delete_accounts`` deleted), in one transaction (``removal.py``); None when
        there is no such tenant."""
        tenant = await self.tenant_named(name)
        if tenant is None:
            return None
        async with self._writer.begin() as conn:
            return await remove_tenant(conn, tenant.id, tenant.name, importer.now(),
                                       delete_accounts=delete_accounts)

    async def tenants(self) -> list[Tenant]:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(_tenants.id, _tenants.name)
                                        .order_by(_tenants.id))
            return [Tenant(id=row.id, name=row.name) for row in result]

    async def tenant(self, tenant_id: int) -> Tenant | None:
        return next((t for t in await self._tenants(_tenants.id == tenant_id)), None)

    async def tenant_named(self, name: str) -> Tenant | None:
        return next((t for t in await self._tenants(_tenants.name == name)), None)

    async def _tenants(self, where: Any) -> list[Tenant]:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(_tenants.id, _tenants.name).where(where))
            return [Tenant(id=row.id, name=row.name) for row in result]

    async def counts(self, tenant_id: int) -> dict[str, int]:
        """How many rows of each kind the tenant has (any status)."""
        out: dict[str, int] = {}
        async with self._engine.connect() as conn:
            for kind in rows.KINDS:
                out[kind.name] = int(await conn.scalar(
                    select(func.count()).select_from(kind.table)
                    .where(kind.table.c.tenant_id == tenant_id)) or 0)
        return out

    # ------------------------------------------------------------ single rows

    async def _one(self, kind: Kind, *where: Any) -> Any:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(kind.table).where(*where)
                                      .order_by(kind.table.c.id).limit(1))).first()
        return rows.model(kind, row) if row is not None else None

    async def _by_sourced_id(self, kind: Kind, tenant_id: int, sourced_id: str) -> Any:
        table = kind.table.c
        return await self._one(kind, table.tenant_id == tenant_id,
                               table.sourced_id == sourced_id)

    async def person(self, tenant_id: int, sourced_id: str) -> Person | None:
        person: Person | None = await self._by_sourced_id(_USERS, tenant_id, sourced_id)
        return person

    async def person_for_account(self, account_id: str) -> Person | None:
        """The rostered person the local account signs in as (the first, should an
        account be linked in several tenants)."""
        person: Person | None = await self._one(_USERS, _users.account_id == account_id)
        return person

    async def org(self, tenant_id: int, sourced_id: str) -> Org | None:
        org: Org | None = await self._by_sourced_id(_ORGS, tenant_id, sourced_id)
        return org

    async def district(self, tenant_id: int) -> Org | None:
        """The tenant's org of type district (the active one first)."""
        org: Org | None = await self._one(
            _ORGS, _orgs.tenant_id == tenant_id, _orgs.type == "district",
            _orgs.status == "active")
        return org

    async def course(self, tenant_id: int, sourced_id: str) -> Course | None:
        course: Course | None = await self._by_sourced_id(_COURSES, tenant_id, sourced_id)
        return course

    async def school_class(self, tenant_id: int, sourced_id: str) -> SchoolClass | None:
        found: SchoolClass | None = await self._by_sourced_id(_CLASSES, tenant_id,
                                                              sourced_id)
        return found

    async def academic_session(self, tenant_id: int,
                               sourced_id: str) -> AcademicSession | None:
        found: AcademicSession | None = await self._by_sourced_id(_SESSIONS, tenant_id,
                                                                  sourced_id)
        return found

    # ------------------------------------------------------------ lists (active rows)

    async def orgs(self, tenant_id: int, type: str | None = None) -> list[Org]:
        query = select(roster_orgs).where(_orgs.tenant_id == tenant_id,
                                          _orgs.status == "active")
        if type is not None:
            query = query.where(_orgs.type == type)
        async with self._engine.connect() as conn:
            result = await conn.execute(query.order_by(_orgs.name, _orgs.id))
            return [rows.model(_ORGS, row) for row in result]

    async def classes_of(self, person: Person) -> list[tuple[SchoolClass, Enrollment]]:
        """The person's active classes with their active enrollment in each, by title."""
        query = (select(roster_classes, roster_enrollments)
                 .join(roster_enrollments, (_enrollments.tenant_id == _classes.tenant_id)
                       & (_enrollments.class_sourced_id == _classes.sourced_id))
                 .where(_classes.tenant_id == person.tenant_id,
                        _enrollments.user_sourced_id == person.sourced_id,
                        _classes.status == "active", _enrollments.status == "active")
                 .order_by(_classes.title, _classes.id))
        out: list[tuple[SchoolClass, Enrollment]] = []
        async with self._engine.connect() as conn:
            for row in (await conn.execute(query)).all():
                data = row._mapping
                out.append((
                    rows.from_columns(_CLASSES, {c.name: data[c] for c in roster_classes.c}),
                    rows.from_columns(_ENROLLMENTS,
                                      {c.name: data[c] for c in roster_enrollments.c})))
        return out

    async def members(self, tenant_id: int, class_sourced_id: str,
                      role: str) -> list[Person]:
        """The active people enrolled (actively) in the class as ``role`` (student,
        teacher, ...), by family then given name."""
        query = (select(roster_users)
                 .join(roster_enrollments, (_enrollments.tenant_id == _users.tenant_id)
                       & (_enrollments.user_sourced_id == _users.sourced_id))
                 .where(_users.tenant_id == tenant_id,
                        _enrollments.class_sourced_id == class_sourced_id,
                        _enrollments.role == role, _enrollments.status == "active",
                        _users.status == "active")
                 .order_by(_users.family_name, _users.given_name, _users.id))
        async with self._engine.connect() as conn:
            result = await conn.execute(query)
            return [rows.model(_USERS, row) for row in result]

    async def page(self, kind_name: str, tenant_id: int, *, offset: int = 0,
                   limit: int = 100) -> list[Any]:
        """Rows of one kind (any status) by sourcedId, for operators to look through."""
        kind = rows.kind(kind_name)
        table = kind.table.c
        query = (select(kind.table).where(table.tenant_id == tenant_id)
                 .order_by(table.sourced_id).offset(max(offset, 0)).limit(max(limit, 0)))
        async with self._engine.connect() as conn:
            result = await conn.execute(query)
            return [rows.model(kind, row) for row in result]

    # ------------------------------------------------------------ writes

    async def apply(self, tenant_id: int, bundle: Bundle,
                    progress: ProgressCallback | None = None) -> ImportResult:
        """Import ``bundle`` into the tenant in one transaction, then give every active
        person a local account (``accounts.py``).  Raises ``ImportRefused`` (nothing
        changed) when an account cannot be made, e.g. a username taken by an account
        that is not this person's."""
        return await importer.apply(self._engine, self._writer, self._keyring,
                                    tenant_id, bundle, progress)


"""``/identity/roster``: the districts (tenants) whose OneRoster roster campusgate
holds, importing a OneRoster CSV bundle into one, removing one, the demo district, and
paged views of what was imported.

An import answers in two ways.  A bundle that does not validate is refused at once:
422, ``error.details`` listing each problem as ``{"path": "users.csv:14", "message":
reason}``.  A valid one streams ``application/x-ndjson`` while it is written: one
``{"event": "progress", "stage", "done", "total"}`` line per batch, then one final
line -- ``{"event": "done", "tenant", "result"}``, or ``{"event": "refused",
"problems"}`` when an account could not be made (a username held by another
account), or ``{"event": "error", "message"}``.  Either way a failed import changed
nothing: it runs in one transaction.  Should the response stream be closed before the
end, the import is cancelled, which rolls it back too.

Roster data is not configuration: these writes make no config revision.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from campusgate.admin.auth import require_admin
from campusgate.admin.endpoints.identity_directory import Directory
from campusgate.admin.endpoints.identity_users import generate_password
from campusgate.admin.errors import ApiError, Conflict, NotFound, ValidationFailed
from campusgate.admin.schemas import Page, error_responses
from campusgate.config.common import StrictModel
from campusgate.identity.directory import IdentityDirectory
from campusgate.identity.roster.bundle import ImportRefused, Problem, Progress
from campusgate.identity.roster.csv_bundle import read_bundle
from campusgate.identity.roster.demo import DEFAULT_TENANT, demo_bundle
from campusgate.identity.roster.models import Tenant
from campusgate.identity.roster.store import RosterStore, TenantExists

__all__ = ["DemoCreate", "TenantView", "build_router", "refused"]

log = logging.getLogger(__name__)

#: Largest bundle accepted (the listener's ``max_body_bytes`` applies first).
MAX_BUNDLE_BYTES = 100 * 1024 * 1024
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
TenantName = Annotated[str, Path(pattern=TENANT_PATTERN)]
#: Path segment -> entity kind (``identity/roster/rows.py``).
_VIEWS = {"orgs": "orgs", "sessions": "academicSessions", "courses": "courses",
          "classes": "classes", "people": "users", "enrollments": "enrollments"}
_NO_STORE = {"Cache-Control": "no-store"}


class TenantView(BaseModel):
    id: int
    name: str
    #: Rows of each kind (orgs, academicSessions, courses, classes, users, enrollments).
    counts: dict[str, int]


class DemoCreate(StrictModel):
    tenant: Annotated[str, Field(pattern=TENANT_PATTERN)] = DEFAULT_TENANT
    #: Everyone's password; without one the gateway makes one and returns it once.
    password: Annotated[str | None, Field(min_length=8, max_length=1024)] = None


def refused(problems: list[Problem]) -> ValidationFailed:
    """The 422 of a bundle that does not validate."""
    return ValidationFailed(
        f"the bundle has {len(problems)} problem(s); nothing was imported",
        [{"path": f"{p.file}:{p.line}", "message": p.reason} for p in problems])


def _roster(directory: IdentityDirectory) -> RosterStore:
    return RosterStore(directory.engine, directory.keyring)


async def _tenant(roster: RosterStore, name: str) -> Tenant:
    found = await roster.tenant_named(name)
    if found is None:
        raise NotFound(f"no roster tenant {name!r}")
    return found


async def _tenant_for_import(roster: RosterStore, name: str) -> Tenant:
    try:
        return await roster.create_tenant(name)
    except TenantExists:
        return await _tenant(roster, name)


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


async def _import_events(roster: RosterStore, tenant: Tenant,
                         bundle: Any) -> AsyncIterator[bytes]:
    """Run the import, yielding its progress and final event as NDJSON lines."""
    queue: asyncio.Queue[Progress] = asyncio.Queue()
    task = asyncio.ensure_future(roster.apply(tenant.id, bundle, queue.put_nowait))
    try:
        while not task.done() or not queue.empty():
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield _line(getter.result().as_json())
            else:
                getter.cancel()
        try:
            result = task.result()
        except ImportRefused as exc:
            yield _line({"event": "refused",
                         "problems": [p.as_json() for p in exc.problems]})
            return
        except Exception:  # the outer edge of a background task: log, answer, serve on
            log.exception("roster import into tenant %r failed", tenant.name)
            yield _line({"event": "error", "message": "the import failed; nothing was "
                         "changed (the gateway's log says why)"})
            return
        yield _line({"event": "done", "tenant": {"id": tenant.id, "name": tenant.name},
                     "result": result.as_json()})
    finally:
        if not task.done():  # the client went away: roll the import back
            task.cancel()


def _plain(value: Any) -> dict[str, Any]:
    return dataclasses.asdict(value)


def build_router() -> APIRouter:
    router = APIRouter(prefix="/identity/roster", tags=["identity"],
                       dependencies=[Depends(require_admin)],
                       responses=error_responses(401))

    @router.get("/tenants", summary="List roster tenants (districts)")
    async def list_tenants(directory: Directory) -> Page[TenantView]:
        roster = _roster(directory)
        return Page[TenantView](data=[
            TenantView(id=t.id, name=t.name, counts=await roster.counts(t.id))
            for t in await roster.tenants()])

    @router.post(
        "/tenants/{name}/import",
        summary="Import a OneRoster 1.1 or 1.2 CSV bundle (zip) into a tenant",
        description="The body is the zip (`Content-Type: application/zip`). The tenant "
        "is created if new. 422 lists the problems of a bundle that does not validate; "
        "otherwise the answer streams NDJSON progress events and a final event (see "
        "docs/roster.md).",
        responses={**error_responses(413, 422),
                   200: {"content": {"application/x-ndjson": {}}}},
    )
    async def import_bundle(name: TenantName, request: Request,
                            directory: Directory) -> StreamingResponse:
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_BUNDLE_BYTES:
                raise _TooLarge(f"the bundle is larger than {MAX_BUNDLE_BYTES} bytes")
        try:
            bundle = await asyncio.to_thread(read_bundle, bytes(data))
        except ImportRefused as exc:
            raise refused(exc.problems) from None
        roster = _roster(directory)
        tenant = await _tenant_for_import(roster, name)
        return StreamingResponse(_import_events(roster, tenant, bundle),
                                 media_type="application/x-ndjson")

    @router.delete(
        "/tenants/{name}",
        summary="Remove a roster tenant (district) and all its rows",
        description="In one transaction: the tenant and its orgs, sessions, courses, "
        "classes, people and enrollments are deleted; the accounts linked to its people "
        "are disabled and lose their roster claims (`accounts=disable`, the default: "
        "consents and grants stay, usernames stay taken), or are deleted with their "
        "consents, their grants and refresh tokens revoked (`accounts=delete`). Answers "
        "what was removed; 404 when there is no such tenant.",
        responses=error_responses(404, 422),
    )
    async def delete_tenant(
        name: TenantName, directory: Directory,
        accounts: Annotated[Literal["disable", "delete"], Query()] = "disable",
    ) -> dict[str, Any]:
        removal = await _roster(directory).delete_tenant(
            name, delete_accounts=accounts == "delete")
        if removal is None:
            raise NotFound(f"no roster tenant {name!r}")
        log.info("roster tenant %r removed: %s", name, removal.as_json())
        return removal.as_json()

    @router.post(
        "/demo",
        summary="Create the demo district (seed-demo)",
        description="A district with three schools, eight classes, six teachers, forty "
        "students and an administrator, all with one password (generated and returned "
        "this once unless given). 409 when the tenant exists.",
        status_code=status.HTTP_201_CREATED,
        responses=error_responses(409, 422),
    )
    async def seed_demo(body: DemoCreate, directory: Directory) -> JSONResponse:
        roster = _roster(directory)
        password = body.password or generate_password()
        bundle = await asyncio.to_thread(read_bundle, demo_bundle(password, body.tenant))
        try:
            tenant = await roster.create_tenant(body.tenant)
        except TenantExists as exc:
            raise Conflict(f"{exc}; seed the demo into another tenant") from None
        try:
            result = await roster.apply(tenant.id, bundle)
        except ImportRefused as exc:
            raise refused(exc.problems) from None
        people = [{"username": p.username, "role": p.role, "name": p.name}
                  for p in await roster.page("users", tenant.id, limit=1000)]
        answer = {"tenant": {"id": tenant.id, "name": tenant.name},
                  "result": result.as_json(), "people": people,
                  "password": None if body.password else password}
        return JSONResponse(answer, status_code=201, headers=_NO_STORE)

    @router.get("/tenants/{name}/{view}", summary="Page through a tenant's rows",
                description="`view`: orgs, sessions, courses, classes, people or "
                "enrollments; rows of any status, by sourcedId.",
                responses=error_responses(404))
    async def list_rows(name: TenantName, view: str, directory: Directory,
                        offset: Annotated[int, Query(ge=0)] = 0,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                        ) -> dict[str, Any]:
        if view not in _VIEWS:
            raise NotFound(f"no roster view {view!r} (one of {', '.join(_VIEWS)})")
        roster = _roster(directory)
        tenant = await _tenant(roster, name)
        found = await roster.page(_VIEWS[view], tenant.id, offset=offset, limit=limit + 1)
        return {"data": [_plain(row) for row in found[:limit]],
                "next_offset": offset + limit if len(found) > limit else None}

    return router


class _TooLarge(ApiError):
    status = 413
    code = "payload_too_large"

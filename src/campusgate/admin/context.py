"""What every admin endpoint works with: the store, the runtime, and the one way to
change the configuration (read latest, change, validate the whole, save if unchanged
meanwhile, retry on a race, reload)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from fastapi import Request, Response
from pydantic import ValidationError

from campusgate.admin.errors import Conflict, ValidationFailed
from campusgate.admin.runtime import RuntimeInfo
from campusgate.config.model import Entities
from campusgate.store import ConfigStore, RevisionConflict

__all__ = [
    "REVISION_HEADER",
    "AdminContext",
    "Written",
    "admin_context",
    "no_content",
    "validate_entities",
    "write_source",
]

REVISION_HEADER = "X-Campusgate-Revision"
T = TypeVar("T")


@dataclass(frozen=True)
class Written(Generic[T]):
    """The outcome of a write: what the change returned, and the revision it made."""

    result: T
    revision: int
    changed: bool
    before: Entities
    after: Entities

    def tag(self, response: Response) -> None:
        response.headers[REVISION_HEADER] = str(self.revision)


def validate_entities(entities: Entities) -> Entities:
    """Validate the whole configuration again after an in-place change (catches, e.g.,
    a route name used in two services)."""
    try:
        return Entities.model_validate(entities.model_dump())
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc) from None


@dataclass(frozen=True)
class AdminContext:
    store: ConfigStore
    runtime: RuntimeInfo
    write_attempts: int = 5

    async def read(self, response: Response) -> Entities:
        """The latest entities, with ``response`` tagged with their revision."""
        revision, entities = await self.store.latest()
        response.headers[REVISION_HEADER] = str(revision)
        return entities

    def check(self, entities: Entities) -> None:
        """422 when ``entities`` cannot run on this gateway's bootstrap settings (a
        Redis-backed plugin while ``state`` is memory)."""
        problem = self.runtime.check(entities)
        if problem:
            raise ValidationFailed(f"invalid value: {problem}", [{"path": "", "message": problem}])

    async def write(
        self,
        source: str,
        change: Callable[[Entities], T],
        expected_revision: int | None = None,
    ) -> Written[T]:
        """Apply ``change`` (which edits a copy of the latest entities in place and may
        raise an :class:`~campusgate.admin.errors.ApiError`) and save the result.

        With ``expected_revision``, a concurrent write is a 409; without, the change is
        re-applied on top of the other write, a few times.
        """
        attempts = 1 if expected_revision is not None else self.write_attempts
        for _ in range(attempts):
            revision, before = await self.store.latest()
            if expected_revision is not None and revision != expected_revision:
                raise _stale(expected_revision, revision)
            work = before.model_copy(deep=True)
            result = change(work)
            after = validate_entities(work)
            self.check(after)
            try:
                saved, changed = await self.store.save_if(after, source, revision)
            except RevisionConflict as exc:
                if expected_revision is not None:
                    raise _stale(expected_revision, exc.actual) from None
                continue
            if changed:
                await self.runtime.reload()
            return Written(result, saved, changed, before, after)
        raise Conflict("the configuration kept changing during this write; try again")


def _stale(expected: int, actual: int | None) -> Conflict:
    now = "" if actual is None else f" (it is now {actual})"
    return Conflict(
        f"the configuration is no longer at revision {expected}{now}; "
        "read it again and retry",
        [{"path": "expected_revision", "message": f"expected {expected}, found {actual}"}],
    )


def admin_context(request: Request) -> AdminContext:
    """FastAPI dependency: the context :func:`create_admin_app` stored on the app."""
    return cast(AdminContext, request.app.state.admin)


def write_source(request: Request) -> str:
    """How a write is described in the revision history."""
    return f"admin-api: {request.method} {request.url.path}"


def no_content(revision: int) -> Response:
    """The 204 answer to a delete, tagged with the revision it made."""
    return Response(status_code=204, headers={REVISION_HEADER: str(revision)})

"""The whole configuration: ``/config`` and its revisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from campusgate.admin.auth import require_admin
from campusgate.admin.context import (
    REVISION_HEADER,
    AdminContext,
    admin_context,
    validate_entities,
    write_source,
)
from campusgate.admin.endpoints.consumers import seal_entities
from campusgate.admin.errors import NotFound
from campusgate.admin.schemas import (
    ChangeView,
    ConfigChangeResult,
    ConfigView,
    Page,
    RevisionView,
    error_responses,
)
from campusgate.config.diff import Change, diff_entities
from campusgate.config.model import Entities
from campusgate.store import canonical_json

__all__ = ["build_router"]

Context = Annotated[AdminContext, Depends(admin_context)]


def build_router() -> APIRouter:
    router = APIRouter(
        tags=["config"],
        dependencies=[Depends(require_admin)],
        responses=error_responses(401),
    )

    @router.get("/config", summary="The current configuration and its revision")
    async def get_config(context: Context, response: Response) -> ConfigView:
        revision, entities = await context.store.latest()
        response.headers[REVISION_HEADER] = str(revision)
        return ConfigView(revision=revision, config=entities)

    @router.put(
        "/config",
        summary="Replace the whole configuration",
        description="Validates the body, stores it as a new revision if it differs from "
        "the current one, and lists what changed. Plaintext credential secrets are sealed "
        "first; one equal to the stored secret is no change. With `dry_run=true` nothing "
        "is saved. "
        "With `expected_revision`, the write fails with 409 if the configuration moved on.",
        responses=error_responses(400, 409, 422),
    )
    async def put_config(
        body: Entities,
        context: Context,
        request: Request,
        response: Response,
        dry_run: Annotated[bool, Query(description="validate and diff only")] = False,
        expected_revision: Annotated[
            int | None, Query(ge=0, description="fail with 409 unless this is current")
        ] = None,
    ) -> ConfigChangeResult:
        # Seal plaintext secrets first: a secret equal to the stored one then keeps its
        # stored sealed form, and is not reported as a change.
        proposed = await seal_entities(context, validate_entities(body))
        if dry_run:
            context.check(proposed)
            revision, current = await context.store.latest()
            response.headers[REVISION_HEADER] = str(revision)
            return _result(
                revision,
                canonical_json(current) != canonical_json(proposed),
                diff_entities(current, proposed),
            )

        def replace(entities: Entities) -> None:
            for name in Entities.model_fields:  # every entity section, as proposed
                setattr(entities, name, getattr(proposed, name))

        written = await context.write(write_source(request), replace, expected_revision)
        written.tag(response)
        return _result(
            written.revision, written.changed, diff_entities(written.before, written.after)
        )

    @router.get("/config/revisions", summary="Revision history, newest first")
    async def list_revisions(
        context: Context, limit: Annotated[int, Query(ge=1, le=1000)] = 50
    ) -> Page[RevisionView]:
        history = await context.store.history(limit)
        return Page[RevisionView](
            data=[
                RevisionView(revision=h.revision, created_at=h.created_at, source=h.source)
                for h in history
            ]
        )

    @router.get(
        "/config/revisions/{revision}",
        summary="The configuration as it was at one revision",
        responses=error_responses(404),
    )
    async def get_revision(revision: int, context: Context) -> ConfigView:
        entities = await context.store.get_revision(revision)
        if entities is None:
            raise NotFound(f"no revision {revision}")
        return ConfigView(revision=revision, config=entities)

    return router


def _result(revision: int, changed: bool, changes: list[Change]) -> ConfigChangeResult:
    return ConfigChangeResult(
        revision=revision,
        changed=changed,
        changes=[ChangeView(action=c.action, kind=c.kind, name=c.name) for c in changes],
    )

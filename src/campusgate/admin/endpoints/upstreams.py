"""``/upstreams``: named target sets, and their targets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from campusgate.admin.auth import require_admin
from campusgate.admin.context import (
    AdminContext,
    admin_context,
    no_content,
    write_source,
)
from campusgate.admin.errors import Conflict, NotFound
from campusgate.admin.lookup import check_name_matches, exists, find_upstream
from campusgate.admin.schemas import Page, error_responses
from campusgate.config.model import Entities, Target, Upstream

__all__ = ["build_router"]

Context = Annotated[AdminContext, Depends(admin_context)]


def build_router() -> APIRouter:
    router = APIRouter(
        prefix="/upstreams",
        tags=["upstreams"],
        dependencies=[Depends(require_admin)],
        responses=error_responses(401),
    )

    @router.get("", summary="List upstreams")
    async def list_upstreams(context: Context, response: Response) -> Page[Upstream]:
        entities = await context.read(response)
        return Page[Upstream](data=entities.upstreams)

    @router.post(
        "",
        summary="Create an upstream",
        status_code=status.HTTP_201_CREATED,
        responses=error_responses(409, 422),
    )
    async def create_upstream(
        body: Upstream, context: Context, request: Request, response: Response
    ) -> Upstream:
        def create(entities: Entities) -> Upstream:
            if exists(find_upstream, entities, body.name):
                raise Conflict(f"an upstream named {body.name!r} already exists")
            entities.upstreams.append(body)
            return body

        written = await context.write(write_source(request), create)
        written.tag(response)
        return written.result

    @router.get("/{name}", summary="Get an upstream", responses=error_responses(404))
    async def get_upstream(name: str, context: Context, response: Response) -> Upstream:
        entities = await context.read(response)
        return entities.upstreams[find_upstream(entities, name)]

    @router.put(
        "/{name}",
        summary="Create or replace an upstream",
        description="Replaces the upstream of that name (200), or creates it (201).",
        responses={201: {"description": "Created", "model": Upstream}, **error_responses(422)},
    )
    async def put_upstream(
        name: str, body: Upstream, context: Context, request: Request, response: Response
    ) -> Upstream:
        check_name_matches(body, name)

        def put(entities: Entities) -> bool:
            if exists(find_upstream, entities, name):
                entities.upstreams[find_upstream(entities, name)] = body
                return False
            entities.upstreams.append(body)
            return True

        written = await context.write(write_source(request), put)
        written.tag(response)
        if written.result:
            response.status_code = status.HTTP_201_CREATED
        return body

    @router.delete(
        "/{name}",
        summary="Delete an upstream",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses(404),
    )
    async def delete_upstream(name: str, context: Context, request: Request) -> Response:
        def delete(entities: Entities) -> None:
            del entities.upstreams[find_upstream(entities, name)]

        written = await context.write(write_source(request), delete)
        return no_content(written.revision)

    @router.post(
        "/{name}/targets",
        summary="Add a target to an upstream",
        status_code=status.HTTP_201_CREATED,
        responses=error_responses(404, 409, 422),
    )
    async def add_target(
        name: str, body: Target, context: Context, request: Request, response: Response
    ) -> Target:
        def add(entities: Entities) -> None:
            upstream = entities.upstreams[find_upstream(entities, name)]
            if any(t.target == body.target for t in upstream.targets):
                raise Conflict(f"upstream {name!r} already has target {body.target!r}")
            upstream.targets.append(body)

        written = await context.write(write_source(request), add)
        written.tag(response)
        return body

    @router.delete(
        "/{name}/targets/{target}",
        summary="Remove a target (host:port) from an upstream",
        description="Removing the last target is refused (422): delete the upstream instead.",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses(404, 422),
    )
    async def remove_target(
        name: str, target: str, context: Context, request: Request
    ) -> Response:
        def remove(entities: Entities) -> None:
            upstream = entities.upstreams[find_upstream(entities, name)]
            kept = [t for t in upstream.targets if t.target != target]
            if len(kept) == len(upstream.targets):
                raise NotFound(f"upstream {name!r} has no target {target!r}")
            upstream.targets = kept

        written = await context.write(write_source(request), remove)
        return no_content(written.revision)

    return router

"""``/consumer-groups``: named groups whose plugins apply to every member.

Membership is the consumer's own ``groups`` list, a label that needs no group object
(the ``acl`` plugin matches labels).  A group object adds tags and plugins to a label,
so deleting one is always allowed: its members keep the label, and its plugins stop
applying to them.
"""

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
from campusgate.admin.errors import Conflict
from campusgate.admin.lookup import check_name_matches, exists, find_group
from campusgate.admin.schemas import ConsumerView, Page, error_responses
from campusgate.config.model import ConsumerGroup, Entities

__all__ = ["build_router"]

Context = Annotated[AdminContext, Depends(admin_context)]


def build_router() -> APIRouter:
    router = APIRouter(
        prefix="/consumer-groups",
        tags=["consumer-groups"],
        dependencies=[Depends(require_admin)],
        responses=error_responses(401),
    )

    @router.get("", summary="List consumer groups")
    async def list_groups(context: Context, response: Response) -> Page[ConsumerGroup]:
        entities = await context.read(response)
        return Page[ConsumerGroup](data=entities.consumer_groups)

    @router.post(
        "",
        summary="Create a consumer group",
        description="Only consumer-scoped plugins may be attached (422 otherwise).",
        status_code=status.HTTP_201_CREATED,
        responses=error_responses(409, 422),
    )
    async def create_group(
        body: ConsumerGroup, context: Context, request: Request, response: Response
    ) -> ConsumerGroup:
        def create(entities: Entities) -> None:
            if exists(find_group, entities, body.name):
                raise Conflict(f"a consumer group named {body.name!r} already exists")
            entities.consumer_groups.append(body)

        (await context.write(write_source(request), create)).tag(response)
        return body

    @router.get("/{name}", summary="Get a consumer group", responses=error_responses(404))
    async def get_group(name: str, context: Context, response: Response) -> ConsumerGroup:
        entities = await context.read(response)
        return entities.consumer_groups[find_group(entities, name)]

    @router.put(
        "/{name}",
        summary="Create or replace a consumer group",
        description="Replaces the group of that name (200), or creates it (201).",
        responses={201: {"description": "Created", "model": ConsumerGroup},
                   **error_responses(422)},
    )
    async def put_group(
        name: str, body: ConsumerGroup, context: Context, request: Request, response: Response
    ) -> ConsumerGroup:
        check_name_matches(body, name)

        def put(entities: Entities) -> bool:
            if exists(find_group, entities, name):
                entities.consumer_groups[find_group(entities, name)] = body
                return False
            entities.consumer_groups.append(body)
            return True

        written = await context.write(write_source(request), put)
        written.tag(response)
        if written.result:
            response.status_code = status.HTTP_201_CREATED
        return body

    @router.delete(
        "/{name}",
        summary="Delete a consumer group",
        description="Allowed while consumers list the group: they keep the label (so "
        "`acl` rules on it still match) but the group's plugins no longer apply.",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses(404),
    )
    async def delete_group(name: str, context: Context, request: Request) -> Response:
        def delete(entities: Entities) -> None:
            del entities.consumer_groups[find_group(entities, name)]

        return no_content((await context.write(write_source(request), delete)).revision)

    @router.get(
        "/{name}/consumers",
        summary="List the consumers in a group (credentials redacted)",
        responses=error_responses(404),
    )
    async def list_members(
        name: str, context: Context, response: Response
    ) -> Page[ConsumerView]:
        entities = await context.read(response)
        find_group(entities, name)  # 404 when there is none
        return Page[ConsumerView](
            data=[ConsumerView.of(c) for c in entities.consumers if name in c.groups]
        )

    return router

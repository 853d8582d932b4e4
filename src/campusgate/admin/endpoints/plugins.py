"""``/plugins``: global plugins, which run on every route."""

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
from campusgate.admin.lookup import exists, find_plugin
from campusgate.admin.schemas import Page, error_responses
from campusgate.config.model import Entities, PluginSpec

__all__ = ["build_router"]

Context = Annotated[AdminContext, Depends(admin_context)]


def build_router() -> APIRouter:
    router = APIRouter(
        prefix="/plugins",
        tags=["plugins"],
        dependencies=[Depends(require_admin)],
        responses=error_responses(401),
    )

    @router.get("", summary="List global plugins")
    async def list_plugins(context: Context, response: Response) -> Page[PluginSpec]:
        entities = await context.read(response)
        return Page[PluginSpec](data=entities.plugins)

    @router.post(
        "",
        summary="Enable a plugin globally",
        description="The config is checked against the plugin's own settings model.",
        status_code=status.HTTP_201_CREATED,
        responses=error_responses(409, 422),
    )
    async def create_plugin(
        body: PluginSpec, context: Context, request: Request, response: Response
    ) -> PluginSpec:
        def create(entities: Entities) -> None:
            if exists(find_plugin, entities, body.name):
                raise Conflict(f"plugin {body.name!r} is already enabled globally")
            entities.plugins.append(body)

        (await context.write(write_source(request), create)).tag(response)
        return body

    @router.get("/{name}", summary="Get a global plugin", responses=error_responses(404))
    async def get_plugin(name: str, context: Context, response: Response) -> PluginSpec:
        entities = await context.read(response)
        return entities.plugins[find_plugin(entities, name)]

    @router.delete(
        "/{name}",
        summary="Remove a global plugin",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses(404),
    )
    async def delete_plugin(name: str, context: Context, request: Request) -> Response:
        def delete(entities: Entities) -> None:
            find_plugin(entities, name)  # 404 when there is none
            entities.plugins = [p for p in entities.plugins if p.name != name]

        return no_content((await context.write(write_source(request), delete)).revision)

    return router

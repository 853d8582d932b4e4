"""``/routes``: every route, found by its (globally unique) name."""

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
from campusgate.admin.lookup import check_name_matches, find_route
from campusgate.admin.schemas import Page, RouteView, error_responses
from campusgate.config.model import Entities, Route, Service

__all__ = ["build_router"]

Context = Annotated[AdminContext, Depends(admin_context)]


def _view(service: Service, route: Route) -> RouteView:
    return RouteView.model_validate({**route.model_dump(), "service": service.name})


def build_router() -> APIRouter:
    router = APIRouter(
        prefix="/routes",
        tags=["routes"],
        dependencies=[Depends(require_admin)],
        responses=error_responses(401),
    )

    @router.get("", summary="List every route, with its service")
    async def list_routes(context: Context, response: Response) -> Page[RouteView]:
        entities = await context.read(response)
        return Page[RouteView](
            data=[_view(s, r) for s in entities.services for r in s.routes]
        )

    @router.get("/{name}", summary="Get a route, with its service", responses=error_responses(404))
    async def get_route(name: str, context: Context, response: Response) -> RouteView:
        entities = await context.read(response)
        service, index = find_route(entities, name)
        return _view(service, service.routes[index])

    @router.put(
        "/{name}",
        summary="Replace a route (it stays in its service)",
        description="Routes are created with POST /services/{name}/routes; to move one to "
        "another service, delete it and create it there.",
        responses=error_responses(404, 422),
    )
    async def put_route(
        name: str, body: Route, context: Context, request: Request, response: Response
    ) -> RouteView:
        check_name_matches(body, name)

        def put(entities: Entities) -> RouteView:
            service, index = find_route(entities, name)
            service.routes[index] = body
            return _view(service, body)

        written = await context.write(write_source(request), put)
        written.tag(response)
        return written.result

    @router.delete(
        "/{name}",
        summary="Delete a route",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses(404),
    )
    async def delete_route(name: str, context: Context, request: Request) -> Response:
        def delete(entities: Entities) -> None:
            service, index = find_route(entities, name)
            del service.routes[index]

        return no_content((await context.write(write_source(request), delete)).revision)

    return router

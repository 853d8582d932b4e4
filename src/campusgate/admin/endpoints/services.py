"""``/services`` and the routes nested in them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response, status
from pydantic import ValidationError

from campusgate.admin.auth import require_admin
from campusgate.admin.context import (
    AdminContext,
    admin_context,
    no_content,
    write_source,
)
from campusgate.admin.errors import Conflict, ValidationFailed
from campusgate.admin.lookup import (
    check_name_matches,
    ensure_route_names_free,
    exists,
    find_service,
)
from campusgate.admin.schemas import Page, error_responses
from campusgate.config.model import Entities, Route, Service

__all__ = ["build_router"]

Context = Annotated[AdminContext, Depends(admin_context)]


def build_router() -> APIRouter:
    router = APIRouter(
        prefix="/services",
        tags=["services"],
        dependencies=[Depends(require_admin)],
        responses=error_responses(401),
    )

    @router.get("", summary="List services (with their routes)")
    async def list_services(context: Context, response: Response) -> Page[Service]:
        entities = await context.read(response)
        return Page[Service](data=entities.services)

    @router.post(
        "",
        summary="Create a service (with its routes)",
        status_code=status.HTTP_201_CREATED,
        responses=error_responses(409, 422),
    )
    async def create_service(
        body: Service, context: Context, request: Request, response: Response
    ) -> Service:
        def create(entities: Entities) -> None:
            if exists(find_service, entities, body.name):
                raise Conflict(f"a service named {body.name!r} already exists")
            ensure_route_names_free(entities, body.routes)
            entities.services.append(body)

        (await context.write(write_source(request), create)).tag(response)
        return body

    @router.get("/{name}", summary="Get a service", responses=error_responses(404))
    async def get_service(name: str, context: Context, response: Response) -> Service:
        entities = await context.read(response)
        return entities.services[find_service(entities, name)]

    @router.put(
        "/{name}",
        summary="Create or replace a service",
        description="The body replaces the whole service, routes included (200), or "
        "creates it (201). To change some fields only, use PATCH.",
        responses={201: {"description": "Created", "model": Service}, **error_responses(409, 422)},
    )
    async def put_service(
        name: str, body: Service, context: Context, request: Request, response: Response
    ) -> Service:
        check_name_matches(body, name)

        def put(entities: Entities) -> bool:
            ensure_route_names_free(entities, body.routes, except_service=name)
            if exists(find_service, entities, name):
                entities.services[find_service(entities, name)] = body
                return False
            entities.services.append(body)
            return True

        written = await context.write(write_source(request), put)
        written.tag(response)
        if written.result:
            response.status_code = status.HTTP_201_CREATED
        return body

    @router.patch(
        "/{name}",
        summary="Change some fields of a service",
        description="The body's top-level fields replace the service's (`routes`, if "
        "given, replaces all routes). Set a field to null to clear it, e.g. "
        '`{"upstream": {...}, "url": null}`.',
        responses=error_responses(404, 409, 422),
    )
    async def patch_service(
        name: str,
        fields: Annotated[dict[str, Any], Body(examples=[{"tags": ["v2"]}])],
        context: Context,
        request: Request,
        response: Response,
    ) -> Service:
        def patch(entities: Entities) -> Service:
            index = find_service(entities, name)
            merged = entities.services[index].model_dump(mode="json") | fields
            try:
                service = Service.model_validate(merged)
            except ValidationError as exc:
                raise ValidationFailed.from_pydantic(exc) from None
            check_name_matches(service, name)
            ensure_route_names_free(entities, service.routes, except_service=name)
            entities.services[index] = service
            return service

        written = await context.write(write_source(request), patch)
        written.tag(response)
        return written.result

    @router.delete(
        "/{name}",
        summary="Delete a service and its routes",
        status_code=status.HTTP_204_NO_CONTENT,
        responses=error_responses(404),
    )
    async def delete_service(name: str, context: Context, request: Request) -> Response:
        def delete(entities: Entities) -> None:
            del entities.services[find_service(entities, name)]

        return no_content((await context.write(write_source(request), delete)).revision)

    @router.get(
        "/{name}/routes", summary="List the routes of a service", responses=error_responses(404)
    )
    async def list_service_routes(name: str, context: Context, response: Response) -> Page[Route]:
        entities = await context.read(response)
        return Page[Route](data=entities.services[find_service(entities, name)].routes)

    @router.post(
        "/{name}/routes",
        summary="Add a route to a service",
        status_code=status.HTTP_201_CREATED,
        responses=error_responses(404, 409, 422),
    )
    async def create_route(
        name: str, body: Route, context: Context, request: Request, response: Response
    ) -> Route:
        def create(entities: Entities) -> None:
            service = entities.services[find_service(entities, name)]
            ensure_route_names_free(entities, [body])
            service.routes.append(body)

        (await context.write(write_source(request), create)).tag(response)
        return body

    return router

"""Finding entities by name in :class:`Entities`, with 404 and 409 as errors."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from campusgate.admin.errors import Conflict, NotFound, ValidationFailed
from campusgate.config.model import Entities, PluginSpec, Route, Service, Upstream

__all__ = [
    "check_name_matches",
    "ensure_route_names_free",
    "exists",
    "find_plugin",
    "find_route",
    "find_service",
    "find_upstream",
]


def find_upstream(entities: Entities, name: str) -> int:
    for index, upstream in enumerate(entities.upstreams):
        if upstream.name == name:
            return index
    raise NotFound(f"no upstream named {name!r}")


def find_service(entities: Entities, name: str) -> int:
    for index, service in enumerate(entities.services):
        if service.name == name:
            return index
    raise NotFound(f"no service named {name!r}")


def find_route(entities: Entities, name: str) -> tuple[Service, int]:
    """The service holding route ``name``, and the route's index in it."""
    for service in entities.services:
        for index, route in enumerate(service.routes):
            if route.name == name:
                return service, index
    raise NotFound(f"no route named {name!r}")


def find_plugin(entities: Entities, name: str) -> int:
    for index, plugin in enumerate(entities.plugins):
        if plugin.name == name:
            return index
    raise NotFound(f"no global plugin named {name!r}")


def exists(finder: Callable[[Entities, str], object], entities: Entities, name: str) -> bool:
    """Whether ``finder`` finds ``name`` (instead of raising 404)."""
    try:
        finder(entities, name)
    except NotFound:
        return False
    return True


def ensure_route_names_free(
    entities: Entities, routes: Iterable[Route], except_service: str | None = None
) -> None:
    """409 if a route name is already used by a service other than ``except_service``."""
    taken = {
        route.name: service.name
        for service in entities.services
        if service.name != except_service
        for route in service.routes
    }
    for route in routes:
        if route.name in taken:
            raise Conflict(
                f"a route named {route.name!r} already exists (in service {taken[route.name]!r})"
            )


def check_name_matches(
    item: Upstream | Service | Route | PluginSpec, name: str
) -> None:
    """422 unless the body's name is the one in the URL (renames are delete + create)."""
    if item.name != name:
        raise ValidationFailed(
            f"the body names {item.name!r} but the URL names {name!r}",
            [{"path": "name", "message": f"must match the name in the URL ({name!r})"}],
        )

"""Finding entities by name in :class:`Entities`, with 404 and 409 as errors."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from campusgate.admin.errors import Conflict, NotFound, ValidationFailed
from campusgate.config.consumers import (
    BasicAuthCredential,
    Credential,
    JwtCredential,
    KeyAuthCredential,
    credential_natural_id,
)
from campusgate.config.model import (
    Consumer,
    ConsumerGroup,
    Entities,
    PluginSpec,
    Route,
    Service,
    Upstream,
)
from campusgate.config.model import credential_identity as model_credential_identity

__all__ = [
    "check_name_matches",
    "credential_identity",
    "ensure_credentials_free",
    "ensure_not_anonymous",
    "ensure_route_names_free",
    "exists",
    "find_consumer",
    "find_credential",
    "find_group",
    "find_plugin",
    "find_route",
    "find_service",
    "find_upstream",
]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


def _index(items: Sequence[_Named], name: str, what: str) -> int:
    for index, item in enumerate(items):
        if item.name == name:
            return index
    raise NotFound(f"no {what} named {name!r}")


def find_upstream(entities: Entities, name: str) -> int:
    return _index(entities.upstreams, name, "upstream")


def find_service(entities: Entities, name: str) -> int:
    return _index(entities.services, name, "service")


def find_route(entities: Entities, name: str) -> tuple[Service, int]:
    """The service holding route ``name``, and the route's index in it."""
    for service in entities.services:
        for index, route in enumerate(service.routes):
            if route.name == name:
                return service, index
    raise NotFound(f"no route named {name!r}")


def find_plugin(entities: Entities, name: str) -> int:
    return _index(entities.plugins, name, "global plugin")


def find_consumer(entities: Entities, name: str) -> int:
    return _index(entities.consumers, name, "consumer")


def find_group(entities: Entities, name: str) -> int:
    return _index(entities.consumer_groups, name, "consumer group")


def find_credential(consumer: Consumer, credential_id: str) -> int:
    """A credential by its id (the explicit ``id``, else its natural id)."""
    for index, cred in enumerate(consumer.credentials):
        if credential_natural_id(cred) == credential_id:
            return index
    raise NotFound(f"consumer {consumer.name!r} has no credential {credential_id!r}")


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


def credential_identity(cred: Credential) -> tuple[str, str]:
    """What makes a credential unique across all consumers (compare sealed forms: an
    API key by its keyed hash)."""
    return model_credential_identity(cred)[0]


def _describe(cred: Credential) -> str:
    if isinstance(cred, KeyAuthCredential):
        return f"this API key (prefix {cred.key_prefix or '?'!r})"
    if isinstance(cred, BasicAuthCredential):
        return f"basic-auth username {cred.username!r}"
    if isinstance(cred, JwtCredential):
        return f"jwt key {cred.key!r}"
    return f"hmac-auth key_id {cred.key_id!r}"


def ensure_credentials_free(
    entities: Entities, credentials: Iterable[Credential], except_consumer: str | None = None
) -> None:
    """409 if one of ``credentials`` (sealed) is already held by a consumer other than
    ``except_consumer``: a key, username, JWT key or HMAC key id names one consumer."""
    taken = {
        credential_identity(cred): consumer.name
        for consumer in entities.consumers
        if consumer.name != except_consumer
        for cred in consumer.credentials
    }
    for cred in credentials:
        holder = taken.get(credential_identity(cred))
        if holder is not None:
            raise Conflict(f"{_describe(cred)} is already used by consumer {holder!r}")


def ensure_not_anonymous(entities: Entities, name: str) -> None:
    """409 if a plugin maps unauthenticated calls to consumer ``name`` (``anonymous``)."""
    places = [(f"global plugin {p.name!r}", p) for p in entities.plugins]
    for service in entities.services:
        places += [(f"plugin {p.name!r} of service {service.name!r}", p) for p in service.plugins]
        for route in service.routes:
            places += [(f"plugin {p.name!r} of route {route.name!r}", p) for p in route.plugins]
    users = [where for where, spec in places if spec.config.get("anonymous") == name]
    if users:
        raise Conflict(
            f"consumer {name!r} is the anonymous consumer of {', '.join(users)}; "
            "change that setting first"
        )


def check_name_matches(
    item: Upstream | Service | Route | PluginSpec | Consumer | ConsumerGroup, name: str
) -> None:
    """422 unless the body's name is the one in the URL (renames are delete + create)."""
    if item.name != name:
        raise ValidationFailed(
            f"the body names {item.name!r} but the URL names {name!r}",
            [{"path": "name", "message": f"must match the name in the URL ({name!r})"}],
        )

"""What changed between two revisions of the entities, named the way operators name things.

Pure code over two :class:`~campusgate.config.model.Entities`.  Upstreams, services
and routes are compared by name (route names are unique across services); global
plugins by plugin name.  A service counts as updated when any of its own fields or
plugins changed; routes added to, changed in or removed from it are reported as routes
alone.  A route that moved to another service is an updated route.  A change of order
only (of services, routes or plugins) is not listed, though the store still records it
as a new revision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from campusgate.config.model import Consumer, ConsumerGroup, Entities

__all__ = ["Change", "ChangeAction", "ChangeKind", "diff_entities"]

ChangeAction = Literal["created", "updated", "deleted"]
ChangeKind = Literal["upstream", "service", "route", "plugin", "consumer", "consumer_group",
                     "identity", "identity_client", "ai", "ai_provider", "ai_model"]

_ACTION_ORDER: dict[str, int] = {"deleted": 0, "updated": 1, "created": 2}
_KIND_ORDER: dict[str, int] = {"upstream": 0, "service": 1, "route": 2, "plugin": 3,
                               "consumer": 4, "consumer_group": 5, "identity": 6,
                               "identity_client": 7, "ai": 8, "ai_provider": 9,
                               "ai_model": 10}


@dataclass(frozen=True)
class Change:
    """One entity created, updated or deleted."""

    action: ChangeAction
    kind: ChangeKind
    name: str


def diff_entities(old: Entities, new: Entities) -> list[Change]:
    """List the changes from ``old`` to ``new``: deletions, updates, creations, then by
    kind (upstream, service, route, plugin, consumer, consumer group, the identity
    provider's settings, its clients, the AI gateway's settings, its providers, its
    models) and name."""
    changes: list[Change] = []
    changes += _compare("upstream", _upstreams(old), _upstreams(new))
    changes += _compare("service", _services(old), _services(new))
    changes += _compare("route", _routes(old), _routes(new))
    changes += _compare("plugin", _plugins(old), _plugins(new))
    changes += _compare("consumer", _named(old.consumers), _named(new.consumers))
    changes += _compare("consumer_group", _named(old.consumer_groups),
                        _named(new.consumer_groups))
    changes += _compare("identity", _identity(old), _identity(new))
    changes += _compare("identity_client", _clients(old), _clients(new))
    changes += _compare("ai", _ai(old), _ai(new))
    changes += _compare("ai_provider", _ai_named(old, "providers"), _ai_named(new, "providers"))
    changes += _compare("ai_model", _ai_named(old, "models"), _ai_named(new, "models"))
    return sorted(changes, key=lambda c: (_ACTION_ORDER[c.action], _KIND_ORDER[c.kind], c.name))


def _compare(kind: ChangeKind, old: dict[str, Any], new: dict[str, Any]) -> Iterable[Change]:
    for name in old.keys() - new.keys():
        yield Change("deleted", kind, name)
    for name in new.keys() - old.keys():
        yield Change("created", kind, name)
    for name in old.keys() & new.keys():
        if old[name] != new[name]:
            yield Change("updated", kind, name)


def _named(items: Sequence[Consumer | ConsumerGroup]) -> dict[str, Any]:
    return {item.name: item.model_dump(mode="json") for item in items}


def _upstreams(entities: Entities) -> dict[str, Any]:
    return {u.name: u.model_dump(mode="json") for u in entities.upstreams}


def _services(entities: Entities) -> dict[str, Any]:
    return {s.name: s.model_dump(mode="json", exclude={"routes"}) for s in entities.services}


def _routes(entities: Entities) -> dict[str, Any]:
    return {
        route.name: (service.name, route.model_dump(mode="json"))
        for service in entities.services
        for route in service.routes
    }


def _plugins(entities: Entities) -> dict[str, Any]:
    # Global plugin names are not required to be unique: compare all specs of a name.
    out: dict[str, list[Any]] = {}
    for plugin in entities.plugins:
        out.setdefault(plugin.name, []).append(plugin.model_dump(mode="json"))
    return out


def _identity(entities: Entities) -> dict[str, Any]:
    """The provider's settings without its clients, under its issuer."""
    if entities.identity is None:
        return {}
    return {"identity": entities.identity.model_dump(mode="json", exclude={"clients"})}


def _clients(entities: Entities) -> dict[str, Any]:
    clients = entities.identity.clients if entities.identity is not None else []
    return {c.client_id: c.model_dump(mode="json") for c in clients}


def _ai(entities: Entities) -> dict[str, Any]:
    """The AI gateway's settings without its providers and models."""
    if entities.ai is None:
        return {}
    return {"ai": entities.ai.model_dump(mode="json", exclude={"providers", "models"})}


def _ai_named(entities: Entities, part: Literal["providers", "models"]) -> dict[str, Any]:
    if entities.ai is None:
        return {}
    items = entities.ai.providers if part == "providers" else entities.ai.models
    return {item.name: item.model_dump(mode="json") for item in items}

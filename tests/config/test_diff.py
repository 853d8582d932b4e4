from __future__ import annotations

from typing import Any

import pytest

from campusgate.config.diff import Change, diff_entities
from campusgate.config.model import Entities


def entities(**parts: Any) -> Entities:
    return Entities.model_validate(parts)


def svc(name: str, url: str = "http://a:1", routes: list[dict[str, Any]] | None = None,
        **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": url, "routes": routes or [], **extra}


def route(name: str, path: str = "/x", **extra: Any) -> dict[str, Any]:
    return {"name": name, "paths": [path], **extra}


def up(name: str, target: str = "a:1") -> dict[str, Any]:
    return {"name": name, "targets": [{"target": target}]}


CASES = [
    pytest.param(entities(), entities(), [], id="empty"),
    pytest.param(
        entities(),
        entities(upstreams=[up("u")], services=[svc("s", routes=[route("r")])],
                 plugins=[{"name": "request-id"}]),
        [Change("created", "upstream", "u"), Change("created", "service", "s"),
         Change("created", "route", "r"), Change("created", "plugin", "request-id")],
        id="everything-created-in-kind-order",
    ),
    pytest.param(
        entities(services=[svc("s", routes=[route("r")])]),
        entities(services=[svc("s", routes=[route("r", "/y")])]),
        [Change("updated", "route", "r")],
        id="route-change-does-not-update-service",
    ),
    pytest.param(
        entities(services=[svc("s", routes=[route("r")])]),
        entities(services=[svc("s", url="http://b:2", routes=[route("r")])]),
        [Change("updated", "service", "s")],
        id="service-field",
    ),
    pytest.param(
        entities(services=[svc("s", routes=[route("r")]), svc("t")]),
        entities(services=[svc("s"), svc("t", routes=[route("r")])]),
        [Change("updated", "route", "r")],
        id="route-moved-between-services",
    ),
    pytest.param(
        entities(upstreams=[up("a"), up("b")], services=[svc("z"), svc("y")]),
        entities(upstreams=[up("b", "b:2"), up("c")], services=[svc("y")]),
        [Change("deleted", "upstream", "a"), Change("deleted", "service", "z"),
         Change("updated", "upstream", "b"), Change("created", "upstream", "c")],
        id="deleted-then-updated-then-created",
    ),
    pytest.param(
        entities(services=[svc("a"), svc("b")]),
        entities(services=[svc("b"), svc("a")]),
        [],
        id="reorder-only",
    ),
    pytest.param(
        entities(plugins=[{"name": "request-id"}]),
        entities(plugins=[{"name": "request-id", "config": {"header_name": "X-Corr"}}]),
        [Change("updated", "plugin", "request-id")],
        id="plugin-config",
    ),
    pytest.param(
        entities(services=[svc("s", routes=[route("r1"), route("r2")])]),
        entities(),
        [Change("deleted", "service", "s"), Change("deleted", "route", "r1"),
         Change("deleted", "route", "r2")],
        id="service-deleted-with-routes",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), CASES)
def test_diff_entities(old: Entities, new: Entities, expected: list[Change]) -> None:
    assert diff_entities(old, new) == expected


def test_diff_is_inverse_when_swapped() -> None:
    a = entities(upstreams=[up("u")])
    b = entities(services=[svc("s")])
    assert diff_entities(a, b) == [Change("deleted", "upstream", "u"),
                                   Change("created", "service", "s")]
    assert diff_entities(b, a) == [Change("deleted", "service", "s"),
                                   Change("created", "upstream", "u")]


def test_identity_settings_and_clients_are_changes_of_their_own() -> None:
    def with_identity(clients: list[dict[str, Any]], code_lifetime: int = 60) -> Entities:
        return Entities.model_validate({"identity": {
            "issuer": "https://id.example.edu", "code_lifetime": code_lifetime,
            "clients": clients}})

    app = {"client_id": "app", "token_endpoint_auth_method": "none",
           "redirect_uris": ["https://app.example.edu/cb"]}
    changed = {**app, "redirect_uris": ["https://app.example.edu/callback"]}
    lms = {**app, "client_id": "lms"}
    assert diff_entities(Entities(), with_identity([app])) == [
        Change("created", "identity", "identity"),
        Change("created", "identity_client", "app")]
    assert diff_entities(with_identity([app, lms]), with_identity([changed], 30)) == [
        Change("deleted", "identity_client", "lms"),
        Change("updated", "identity", "identity"),
        Change("updated", "identity_client", "app")]

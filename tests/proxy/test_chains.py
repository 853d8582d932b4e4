"""ChainBuilder: per-name precedence, one instance per spec, the authentication step,
and consumer plans compiled once per (route, consumer)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from campusgate.config.model import Entities
from campusgate.plugins.acl import AclPlugin
from campusgate.plugins.authentication import AUTH_PRIORITY, AuthenticationStep
from campusgate.plugins.basic_auth import BasicAuthPlugin
from campusgate.plugins.key_auth import KeyAuthPlugin
from campusgate.plugins.registry import default_resources
from campusgate.plugins.request_id import RequestIdPlugin
from campusgate.plugins.request_termination import RequestTerminationPlugin
from campusgate.proxy.chains import ChainBuilder, Level
from campusgate.proxy.consumers import ConsumerIndex
from campusgate.proxy.context import RequestContext


def builder(**entities: Any) -> tuple[ChainBuilder, Entities]:
    model = Entities.model_validate(entities)
    resources = default_resources()
    return ChainBuilder(model, resources, ConsumerIndex.build(model.consumers,
                                                              resources.keyring)), model


def levels(model: Entities, service: int = 0, route: int = 0) -> list[Level]:
    svc = model.services[service]
    r = svc.routes[route]
    return [("global", model.plugins), (f"service:{svc.name}", svc.plugins),
            (f"route:{r.name}", r.plugins)]


def request(builder: ChainBuilder, route: str, consumer: str | None) -> RequestContext:
    ctx = RequestContext("GET", "/", "", [], "127.0.0.1", "http", "h", "rid")
    ctx.route = SimpleNamespace(name=route)  # type: ignore[assignment]
    ctx.consumer = builder.consumers.find(consumer) if consumer else None
    return ctx


def service(name: str, routes: list[str], plugins: list[dict[str, Any]] | None = None,
            route_plugins: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    return {"name": name, "url": "http://127.0.0.1:9", "plugins": plugins or [],
            "routes": [{"name": r, "paths": [f"/{r}"],
                        "plugins": (route_plugins or {}).get(r, [])} for r in routes]}


def stop(status: int) -> dict[str, Any]:
    return {"name": "request-termination", "config": {"status_code": status}}


def consumer(name: str, groups: list[str] | None = None,
             plugins: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": name, "groups": groups or [], "plugins": plugins or []}


def test_one_instance_per_spec_shared_by_every_chain() -> None:
    b, model = builder(services=[service("s", ["r1", "r2"])], plugins=[stop(410)])
    one = b.chain(levels(model, route=0), "r1")
    two = b.chain(levels(model, route=1), "r2")
    assert one.access[0] is two.access[0]
    assert isinstance(one.access[0], RequestTerminationPlugin)


def test_most_specific_spec_wins_and_disabled_specs_drop_out() -> None:
    b, model = builder(
        services=[service("s", ["r1", "r2"], [stop(411)],
                          {"r1": [stop(412)], "r2": [{**stop(599), "enabled": False}]})],
        plugins=[stop(410)])
    chain = b.chain(levels(model, route=0))
    assert [p.config.status_code for p in chain.access] == [412]  # type: ignore[attr-defined]
    assert b.chain(levels(model, route=1)).access == ()
    assert b.chain(levels(model)[:2]).access[0].env.scope == "service:s"


def test_auth_plugins_become_one_step_at_the_auth_priority() -> None:
    b, model = builder(
        services=[service("s", ["r"], route_plugins={"r": [
            {"name": "basic-auth"}, {"name": "acl", "config": {"allow": ["g"]}},
            {"name": "key-auth"}]})],
        plugins=[{"name": "request-id", "config": {"header_name": "X-Correlation-Id"}}])
    chain = b.chain(levels(model))
    kinds = [type(p) for p in chain.access]
    assert kinds == [RequestIdPlugin, AuthenticationStep, AclPlugin]
    step = chain.access[1]
    assert isinstance(step, AuthenticationStep)
    assert step.priority == AUTH_PRIORITY
    assert [type(m) for m in step.members] == [KeyAuthPlugin, BasicAuthPlugin]
    assert chain.response == tuple(p for p in chain.access if isinstance(p, RequestIdPlugin))


def test_no_auth_plugins_no_step() -> None:
    b, model = builder(services=[service("s", ["r"])], plugins=[stop(410)])
    assert not any(isinstance(p, AuthenticationStep) for p in b.chain(levels(model)).access)


def test_plans_are_compiled_once_per_route_and_consumer() -> None:
    b, model = builder(
        services=[service("s", ["r1", "r2"], route_plugins={"r1": [stop(412)]})],
        plugins=[{"name": "key-auth"}],
        consumers=[consumer("ann", ["g"]), consumer("ben"), consumer("cid", ["other"])],
        consumer_groups=[{"name": "g", "plugins": [stop(413)]}])
    b.chain(levels(model, route=0), "r1")
    b.chain(levels(model, route=1), "r2")
    plan = b.plan_for(request(b, "r1", "ann"))
    assert plan is not None
    assert b.plan_for(request(b, "r1", "ann")) is plan  # remembered
    assert b.plan_for(request(b, "r2", "ann")) is not plan
    # what is left after authentication: the group's termination, not the step again
    assert [type(p) for p in plan.access] == [RequestTerminationPlugin]
    assert plan.access[0].env.scope == "group:g"
    assert b.plan_for(request(b, "r1", "ben")) is None  # no plugins of his own
    assert b.plan_for(request(b, "r1", "cid")) is None  # his group has none either
    assert b.plan_for(request(b, "r1", None)) is None


def test_plan_keeps_route_plugins_after_authentication() -> None:
    b, model = builder(
        services=[service("s", ["r"], route_plugins={"r": [
            {"name": "key-auth"}, {"name": "acl", "config": {"allow": ["g"]}}]})],
        consumers=[consumer("ann", ["g"], [stop(414)])])
    base = b.chain(levels(model), "r")
    plan = b.plan_for(request(b, "r", "ann"))
    assert plan is not None
    acl = base.access[-1]
    assert isinstance(acl, AclPlugin)
    assert plan.access[0] is acl  # the same instance, still to run (950 > 2)
    assert isinstance(plan.access[1], RequestTerminationPlugin)
    assert plan.access[1].env.scope == "consumer:ann"


def test_without_consumer_plugins_nothing_is_scoped() -> None:
    b, model = builder(services=[service("s", ["r"])], plugins=[{"name": "key-auth"}],
                       consumers=[consumer("ann")])
    assert not b.scoped
    b.chain(levels(model), "r")
    assert b.plan_for(request(b, "r", "ann")) is None


@pytest.mark.parametrize("name", ["key-auth", "basic-auth", "hmac-auth"])
def test_auth_plugins_at_consumer_scope_are_a_load_error(name: str) -> None:
    with pytest.raises(ValidationError, match=f"plugin '{name}' cannot be attached to a "
                                              "consumer or consumer group"):
        Entities.model_validate({"consumers": [consumer("ann", plugins=[{"name": name}])]})
    with pytest.raises(ValidationError, match="runs before the consumer is known"):
        Entities.model_validate({"consumer_groups": [{"name": "g",
                                                      "plugins": [{"name": name}]}]})


def test_a_plugin_whose_config_is_a_no_op_is_left_out_of_the_chains() -> None:
    # request-id with its defaults does what the core does for every request
    b, model = builder(services=[service("s", ["r"])], plugins=[{"name": "request-id"}])
    chain = b.chain(levels(model))
    assert chain.access == () and chain.response == ()

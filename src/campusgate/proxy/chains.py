"""Plugin chains: which plugins run for a request, in which order.

Plugins attach at five levels.  For each plugin name the most specific level wins:
consumer > consumer group > route > service > global.  (Between two groups of one
consumer, the group listed first wins.)  Consumer and group plugins are known only
after authentication, so a route's chain is compiled from the first three levels,
and a request whose consumer has plugins of its own switches, right after the
authentication step, to a :class:`Plan` compiled for that (route, consumer) pair on
first use and remembered for the snapshot's life.

One instance is built per plugin spec per snapshot and shared by every chain that
uses the spec, so a global plugin is one object however many routes there are.

A chain with body-phase plugins also gets their :class:`~campusgate.proxy.bodies.BodyHooks`
(``Chain.body``) and a :class:`~campusgate.proxy.bodies.BodyStep` at the end of its
access phase, which hands the hooks to each request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from campusgate.config.common import PluginSpec
from campusgate.config.model import Entities
from campusgate.plugins.authentication import AuthenticationStep, AuthPlugin
from campusgate.plugins.base import Plugin, PluginEnv, PluginResources
from campusgate.plugins.registry import build_plugin
from campusgate.proxy.bodies import BodyHooks, BodyStep
from campusgate.proxy.consumers import ConsumerIndex, ConsumerInfo
from campusgate.proxy.context import HeaderList, RequestContext

__all__ = ["Chain", "ChainBuilder", "Level", "Plan", "finish_headers"]

#: (scope, specs): scope is ``global``, ``service:NAME``, ``route:NAME``, ...
Level = tuple[str, Sequence[PluginSpec]]


def finish_headers(ctx: RequestContext, headers: HeaderList) -> None:
    """Last touches on every response: the request id, headers plugins queued."""
    for name, _ in headers:
        if name == b"x-request-id":
            headers[:] = [h for h in headers if h[0] != b"x-request-id"]
            break
    if not ctx.vars.get("request_id.hide"):
        headers.append((b"x-request-id", ctx.request_id.encode()))
    if ctx.response_headers_add:
        headers.extend(ctx.response_headers_add)


@dataclass(frozen=True, eq=False)
class Chain:
    """The three phases' plugins, each in run order, and the body phases' (if any)."""

    access: tuple[Plugin, ...]
    response: tuple[Plugin, ...]
    log: tuple[Plugin, ...]
    body: BodyHooks | None = None

    def on_response(self, ctx: RequestContext, status: int, headers: HeaderList) -> None:
        """The response phase: plugins edit the headers; then the request id and any
        headers plugins queued for the client are added."""
        for plugin in self.response:
            plugin.response(ctx, status, headers)
        finish_headers(ctx, headers)


class Plan(Chain):
    """A consumer's chains on one route: ``access`` holds what is left to run after
    authentication."""


class ChainBuilder:
    """Builds the chains of one snapshot."""

    def __init__(self, entities: Entities, resources: PluginResources,
                 consumers: ConsumerIndex) -> None:
        self.resources = resources
        self.consumers = consumers
        self.global_specs = list(entities.plugins)
        self.group_levels: dict[str, Level] = {
            g.name: (f"group:{g.name}", list(g.plugins)) for g in entities.consumer_groups
            if g.plugins}
        self.consumer_levels: dict[str, Level] = {
            c.name: (f"consumer:{c.name}", list(c.plugins)) for c in entities.consumers
            if c.plugins}
        self.scoped = bool(self.group_levels or self.consumer_levels)
        self._instances: dict[int, Plugin] = {}
        self._specs: list[PluginSpec] = []  # keeps specs alive, so ids stay unique
        self._route_levels: dict[str, tuple[list[Level], Chain]] = {}
        self._plans: dict[tuple[str, str], Plan | None] = {}

    def chain(self, levels: Sequence[Level], route: str | None = None) -> Chain:
        """The chain of ``levels`` (least specific first); ``route`` names the route
        it belongs to, so consumer plans can be derived from it later."""
        chain = self._compile(levels)
        if route is not None and self.scoped:
            self._route_levels[route] = (list(levels), chain)
        return chain

    def plan_for(self, ctx: RequestContext) -> Plan | None:
        """The plan for ``ctx``'s route and consumer, or None when the consumer and
        its groups have no plugins."""
        consumer, route = ctx.consumer, ctx.route
        if consumer is None or route is None or not self.scoped:
            return None
        key = (route.name, consumer.name)
        if key not in self._plans:
            self._plans[key] = self._plan(route.name, consumer)
        return self._plans[key]

    def _plan(self, route: str, consumer: ConsumerInfo) -> Plan | None:
        extra = [self.group_levels[g] for g in reversed(consumer.groups)
                 if g in self.group_levels]
        if consumer.name in self.consumer_levels:
            extra.append(self.consumer_levels[consumer.name])
        if not extra or route not in self._route_levels:
            return None
        levels, base = self._route_levels[route]
        full = self._compile(levels + extra)
        # What ran up to and including authentication is not run again, even where
        # the consumer sets the same plugin: an override of a plugin that runs before
        # authentication changes only its later phases (response, log).
        ran: set[str] = set()
        for plugin in base.access:
            ran.add(plugin.name)
            if isinstance(plugin, AuthenticationStep):
                break
        rest = tuple(p for p in full.access
                     if p.name not in ran and not isinstance(p, AuthenticationStep))
        return Plan(rest, full.response, full.log, full.body)

    def _compile(self, levels: Sequence[Level]) -> Chain:
        by_name: dict[str, tuple[str, PluginSpec]] = {}
        for scope, specs in levels:
            for spec in specs:
                by_name[spec.name] = (scope, spec)
        plugins = sorted((self._instance(scope, spec) for scope, spec in by_name.values()
                          if spec.enabled), key=lambda p: -p.priority)
        members = tuple(p for p in plugins if isinstance(p, AuthPlugin))
        access: list[Plugin] = [p for p in plugins
                                if p.runs("access") and not isinstance(p, AuthPlugin)]
        if members:
            step = AuthenticationStep(members, self._env("global"), self.plan_for,
                                      self.scoped)
            access.append(step)
            access.sort(key=lambda p: -p.priority)
        body = BodyHooks.of(plugins)
        if body is not None:
            access.append(BodyStep(body, self._env("global")))  # the lowest priority
        return Chain(tuple(access),
                     tuple(p for p in plugins if p.runs("response")),
                     tuple(p for p in plugins if p.runs("log")),
                     body)

    def _instance(self, scope: str, spec: PluginSpec) -> Plugin:
        plugin = self._instances.get(id(spec))
        if plugin is None:
            plugin = build_plugin(spec.name, spec.config, self._env(scope))
            self._instances[id(spec)] = plugin
            self._specs.append(spec)
        return plugin

    def _env(self, scope: str) -> PluginEnv:
        return PluginEnv(self.resources, scope, self.consumers)

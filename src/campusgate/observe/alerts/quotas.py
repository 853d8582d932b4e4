"""Quota forecasts: when a consumer's long ``rate-limit`` window (an hour, a day, a
month) runs out at the current pace (docs/observability.md, "Trends and alerts").

A rate-limit counter lives in the state backend under a key that cannot be listed
(``<scope>|consumer=<name>``, :mod:`campusgate.plugins.rate_limit`), so the forecast
is built from the roll-ups instead: for every plugin instance counted ``by:
consumer``, the requests each consumer made in the window so far (the sliding window:
the last window-length) on the routes the instance governs, without those refused
with a 429, times the plugin's ``cost``; the pace is the last hour's.  Other ``by``
values (address, credential, header...) are not dimensions of the roll-ups and are
not forecast.

A rate limit attached to a consumer, or to a consumer group, governs every request
of that consumer (or of each member, with a counter each) on every route, and wins
over the route's, service's and global one: its consumers are counted under it alone
(a consumer's own limit over its groups', the group listed first over the others:
``proxy/chains.py``).

For a sliding window the forecast ignores the requests that will age out before the
limit is reached, so it warns early, never late; and a run-out further away than one
window-length is no run-out (at that pace the window never fills).

:func:`rate_limit_quotas` reads the quotas from a revision's entities (plain values,
no plugin instance); :func:`quota_findings` judges them over the roll-ups.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from campusgate.config.common import PluginSpec
from campusgate.config.model import Entities
from campusgate.config.observe_alerts import AlertRule, AlertScope
from campusgate.observe.analytics import Analytics, Filters, TimeRange
from campusgate.observe.trends import HOUR, Finding, forecast, forecast_finding
from campusgate.plugins.rate_limit import RateLimitConfig
from campusgate.proxy.snapshot import with_ai_service, with_identity_service

__all__ = ["MIN_WINDOW", "Quota", "quota_findings", "rate_limit_quotas"]

#: Windows shorter than this are rates, not quotas: they are not forecast.
MIN_WINDOW = HOUR
#: Consumers read per query (the busiest first: the ones nearest their limit).
_TOP = 1000

#: Roll-up filters: dimension -> value (``{}``: every request).
Selector = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Quota:
    """One long window of one ``rate-limit`` plugin counted per consumer."""

    #: Where the plugin is attached (its counters' prefix): ``global``,
    #: ``service:NAME`` or ``route:NAME``.
    scope: str
    #: The window as configured (``1d``) and in seconds.
    window: str
    seconds: float
    limit: int
    #: Units one request uses.
    cost: int
    #: The requests it counts: those of ``within``, less those of each of ``excluding``
    #: (the routes and services where a more specific ``rate-limit`` wins).
    within: Selector
    excluding: tuple[Selector, ...] = ()
    #: The service it is attached at, or whose route it is attached at (rule scopes).
    service: str | None = None
    #: Consumers it does not count: those unauthenticated calls map to (counted by
    #: address), and those with a ``rate-limit`` of their own or of a group.
    skipped: frozenset[str] = frozenset()
    #: The only consumers it counts (a consumer's or a group's limit); None: any.
    only: frozenset[str] | None = None

    @property
    def label(self) -> str:
        """The quota in a finding's subject: ``1d at route:roster``."""
        return f"{self.window} at {self.scope}"


def _rate_limit(specs: Sequence[PluginSpec]) -> PluginSpec | None:
    """The ``rate-limit`` spec of one level (the last one, as chains take it)."""
    found = None
    for spec in specs:
        if spec.name == "rate-limit":
            found = spec
    return found


def rate_limit_quotas(entities: Entities) -> list[Quota]:
    """The quotas of a revision: every ``rate-limit`` spec at the global, service or
    route level (the identity provider's and AI gateway's plugins are their services'),
    then at the consumer and consumer-group level, that counts ``by: consumer``, one
    per window of at least :data:`MIN_WINDOW`.

    The most specific spec of a name wins on a route, disabled or not, so a global
    quota does not count the services and routes that set their own."""
    limited_groups = {g.name for g in entities.consumer_groups if _rate_limit(g.plugins)}
    anonymous = frozenset(value for _, spec in entities.plugin_specs()
                          if isinstance(value := spec.config.get("anonymous"), str))
    skipped = anonymous | {c.name for c in entities.consumers
                           if _rate_limit(c.plugins) or limited_groups.intersection(c.groups)}
    services = with_ai_service(entities, with_identity_service(entities))
    placed: list[tuple[PluginSpec, str, Selector, tuple[Selector, ...], str | None]] = []
    top_excluded: list[Selector] = []
    for service in services:
        own = _rate_limit(service.plugins)
        routes = [(route.name, _rate_limit(route.plugins)) for route in service.routes]
        excluded = tuple({"route": name} for name, spec in routes if spec is not None)
        if own is not None:
            top_excluded.append({"service": service.name})
            placed.append((own, f"service:{service.name}", {"service": service.name},
                           excluded, service.name))
        else:
            top_excluded += excluded
        placed += [(spec, f"route:{name}", {"route": name}, (), service.name)
                   for name, spec in routes if spec is not None]
    top = _rate_limit(entities.plugins)
    if top is not None:
        placed.insert(0, (top, "global", {}, tuple(top_excluded), None))
    quotas = []
    for spec, scope, within, excluding, service_name in placed:
        quotas += _windows(spec, scope, within, excluding=excluding, service=service_name,
                           skipped=skipped)
    return quotas + _consumer_quotas(entities, anonymous)


def _consumer_quotas(entities: Entities, anonymous: frozenset[str]) -> list[Quota]:
    """The quotas attached to consumers, then to consumer groups (each member counted
    under the limit that wins for it; anonymous consumers are counted by address)."""
    groups = {g.name: spec for g in entities.consumer_groups
              if (spec := _rate_limit(g.plugins)) is not None}
    quotas: list[Quota] = []
    members: dict[str, list[str]] = {}
    for consumer in entities.consumers:
        if consumer.name in anonymous:
            continue
        own = _rate_limit(consumer.plugins)
        if own is not None:
            quotas += _windows(own, f"consumer:{consumer.name}", {"consumer": consumer.name},
                               only=frozenset([consumer.name]))
            continue
        first = next((group for group in consumer.groups if group in groups), None)
        if first is not None:
            members.setdefault(first, []).append(consumer.name)
    for group, spec in groups.items():
        if group in members:
            quotas += _windows(spec, f"group:{group}", {}, only=frozenset(members[group]))
    return quotas


def _windows(spec: PluginSpec, scope: str, within: Selector, *,
             excluding: tuple[Selector, ...] = (), service: str | None = None,
             skipped: frozenset[str] = frozenset(),
             only: frozenset[str] | None = None) -> list[Quota]:
    """A quota of ``spec`` attached at ``scope`` for each of its long windows (none
    unless it is enabled and counts ``by: consumer``)."""
    config = RateLimitConfig.model_validate(spec.config)
    if not spec.enabled or config.by != "consumer":
        return []
    return [Quota(scope, window.name, window.seconds, window.limit, config.cost, within,
                  excluding, service, skipped, only)
            for window in (limit.build() for limit in config.limits)
            if window.seconds >= MIN_WINDOW]


def _selected(quota: Quota, scope: AlertScope) -> bool:
    """Whether a rule's scope takes ``quota``: ``route`` the quotas attached at that
    route, ``service`` those attached at that service or one of its routes."""
    if scope.route is not None and quota.scope != f"route:{scope.route}":
        return False
    return scope.service is None or quota.service == scope.service


async def _counted(analytics: Analytics, span: TimeRange, quota: Quota,
                   consumer: str | None) -> dict[str, float]:
    """Requests a rate limit admitted, per consumer, that ``quota`` counts in ``span``."""
    out: dict[str, float] = {}
    for sign, selector in ((1.0, quota.within), *((-1.0, s) for s in quota.excluding)):
        values = dict(selector)
        if consumer is not None:
            values["consumer"] = consumer
        for ranked in await analytics.top(span, "consumer", "requests", _TOP,
                                          Filters(values), ("rate_limited",)):
            name = ranked.key["consumer"]
            if not name or name in quota.skipped or (
                    quota.only is not None and name not in quota.only):
                continue
            admitted = (ranked.values["requests"] or 0.0) - (ranked.values["rate_limited"] or 0.0)
            out[name] = out.get(name, 0.0) + sign * admitted
    return {name: count for name, count in out.items() if count > 0}


async def quota_findings(analytics: Analytics, quotas: Sequence[Quota], rule: AlertRule,
                         now: float) -> list[Finding]:
    """Each consumer with traffic under each quota in the rule's scope: breached when
    the quota runs out within ``horizon`` at the last hour's pace, or ``used_ratio``
    of it is used."""
    end = math.ceil(now / 60) * 60
    consumer = rule.scope.consumer
    #: The last hour per plugin scope (the windows of one plugin count alike).
    paces: dict[str, dict[str, float]] = {}
    findings: list[Finding] = []
    for quota in quotas:
        if not _selected(quota, rule.scope):
            continue
        used = await _counted(analytics, TimeRange(end - int(quota.seconds), end), quota,
                              consumer)
        if not used:
            continue
        last_hour = paces.get(quota.scope)
        if last_hour is None:
            last_hour = paces[quota.scope] = await _counted(
                analytics, TimeRange(end - HOUR, end), quota, consumer)
        for name, requests in sorted(used.items()):
            rate = last_hour.get(name, 0.0) * quota.cost / HOUR
            # Beyond one window-length every request seen now has aged out: at this
            # pace the window never fills.
            result = forecast(requests * quota.cost, float(quota.limit), rate, now=now,
                              period_end=now + quota.seconds)
            found = forecast_finding({"consumer": name, "quota": quota.label}, result,
                                     now=now, horizon=rule.horizon, used_ratio=rule.used_ratio)
            findings.append(replace(found, kind="quota-forecast"))
    return findings

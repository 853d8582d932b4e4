"""What each kind of rule looks at, read from where it lives: roll-ups through
:class:`~campusgate.observe.analytics.Analytics` (rate-limit quotas too:
:mod:`.quotas`), AI budget counters and target ejections from the state backend.
The judging is :mod:`campusgate.observe.trends`'.

Ejections happen in every worker's own balancers: each worker adds the ejections it
saw since its last look to a per-minute counter of the state backend
(``obs:ej:<upstream>|<target>:<minute>``), and the evaluating worker sums the minutes
of a rule's window.  (With ``state: memory`` and several workers, only the
evaluating worker's ejections are seen.)  Budget counters are read, never changed,
with the keys :mod:`campusgate.ai.budgets` writes; the pace of the last hour comes
from the values seen at earlier evaluations.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from campusgate.ai.budgets import KINDS, counter_key, period_bounds
from campusgate.config.ai import AiBudget
from campusgate.config.observe_alerts import AlertRule
from campusgate.observe.alerts.quotas import Quota, quota_findings
from campusgate.observe.analytics import Analytics, Filters, TimeRange
from campusgate.observe.trends import (
    Finding,
    WindowStats,
    choose_baseline,
    day_spans,
    ejection_finding,
    error_rate_finding,
    forecast,
    forecast_finding,
    hour_spans,
    latency_finding,
    pace,
)
from campusgate.proxy.balancer import Balancer
from campusgate.state.base import StateBackend

__all__ = ["AlertSources", "Checks", "latency_metric"]

_QUANTILES = {0.5: "p50", 0.9: "p90", 0.95: "p95", 0.99: "p99"}


def _no_balancers() -> Mapping[str, Balancer]:
    return {}


def _no_budgets() -> Sequence[AiBudget]:
    return ()


def _no_quotas() -> Sequence[Quota]:
    return ()


@dataclass(frozen=True)
class AlertSources:
    """Where the checks read the gateway's live state (the worker gives these)."""

    #: The current snapshot's balancers, by upstream name.
    balancers: Callable[[], Mapping[str, Balancer]] = _no_balancers
    #: The AI budgets of the revision being served.
    budgets: Callable[[], Sequence[AiBudget]] = _no_budgets
    #: The state backend the budgets count in (shared: Redis with several workers).
    state: Callable[[], StateBackend] | None = None
    #: The rate-limit quotas of the revision being served
    #: (:func:`~campusgate.observe.alerts.quotas.rate_limit_quotas`).
    quotas: Callable[[], Sequence[Quota]] = _no_quotas


def latency_metric(rule: AlertRule) -> str:
    """The analytics metric a latency rule compares (``p95``, ``upstream_p99``...)."""
    name = _QUANTILES[rule.quantile]
    return f"upstream_{name}" if rule.latency == "upstream" else name


def _filters(rule: AlertRule) -> Filters:
    scope = rule.scope
    return Filters({name: value for name, value in (
        ("route", scope.route), ("service", scope.service), ("upstream", scope.upstream))
        if value is not None})


@dataclass
class Checks:
    """The checks of every kind; keeps what they need between evaluations."""

    analytics: Analytics
    sources: AlertSources
    #: ``(budget, kind)`` -> ``(time, used)`` seen at earlier evaluations.
    samples: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    #: ``(upstream, target)`` -> the balancer's ejection count last published.
    published: dict[tuple[str, str], int] = field(default_factory=dict)

    async def run(self, rule: AlertRule, now: float) -> list[Finding]:
        if rule.kind in ("latency-regression", "error-rate"):
            return await self.regressions(rule, now)
        if rule.kind == "budget-forecast":
            return await self.forecasts(rule, now)
        if rule.kind == "quota-forecast":
            return await quota_findings(self.analytics, self.sources.quotas(), rule, now)
        return await self.ejections(rule, now)

    # ------------------------------------------------------------ roll-ups

    async def _stats(self, span: tuple[int, int], rule: AlertRule,
                     metric: str | None) -> dict[str, WindowStats]:
        extra = ("errors", metric) if metric else ("errors",)
        ranked = await self.analytics.top(TimeRange(*span), rule.per, "requests", 1000,
                                          _filters(rule), extra)
        return {str(r.key[rule.per]): WindowStats(r.values["requests"] or 0.0,
                                                  r.values["errors"] or 0.0,
                                                  r.values[metric] if metric else None)
                for r in ranked if r.key[rule.per]}

    async def regressions(self, rule: AlertRule, now: float) -> list[Finding]:
        """Latency or error rate of each route (or upstream) against its baseline."""
        latency = rule.kind == "latency-regression"
        metric = latency_metric(rule) if latency else None
        window = int(rule.window) // 60 * 60
        end = math.ceil(now / 60) * 60
        current = await self._stats((end - window, end), rule, metric)
        if not current:
            return []
        days = [await self._stats(s, rule, metric)
                for s in day_spans(end, window, rule.baseline_days)]
        hours: list[dict[str, WindowStats]] = []
        findings: list[Finding] = []
        for name, stats in sorted(current.items()):
            past_days = [d[name] for d in days if name in d]
            if not hours and sum(w.requests >= rule.min_requests
                                 for w in past_days) < rule.min_baseline_days:
                hours = [await self._stats(s, rule, metric)
                         for s in hour_spans(end, window, rule.baseline_hours)]
            baseline = choose_baseline(past_days, [h[name] for h in hours if name in h],
                                       min_requests=rule.min_requests,
                                       min_days=rule.min_baseline_days)
            subject: dict[str, str] = {rule.per: name}
            found = (latency_finding(subject, stats, baseline, factor=rule.factor,
                                     floor_ms=rule.floor_ms, min_requests=rule.min_requests,
                                     quantile=metric or "") if latency else
                     error_rate_finding(subject, stats, baseline, delta=rule.delta,
                                        min_rate=rule.min_rate, min_requests=rule.min_requests))
            if found is not None:
                findings.append(found)
        return findings

    # ------------------------------------------------------------ budgets

    async def forecasts(self, rule: AlertRule, now: float) -> list[Finding]:
        """Each day or month budget in scope, each of its limits."""
        if self.sources.state is None:
            return []
        scope = rule.scope
        budgets = [b for b in self.sources.budgets()
                   if b.period != "minute"  # a per-minute limit is a rate, not a quota
                   and scope.budget in (None, b.name) and scope.consumer in (None, b.consumer)
                   and scope.model in (None, b.model)]
        state = self.sources.state()
        reads = [(budget, kind, start.timestamp(), end.timestamp(),
                  counter_key(budget, start, kind))
                 for budget in budgets
                 for start, end in (period_bounds(budget.period, now),)
                 for kind in KINDS if getattr(budget, kind) is not None]
        values = await asyncio.gather(*(state.incr(key, 0.0, max(1.0, end - now + 60))
                                        for _, _, _, end, key in reads))
        findings = []
        for (budget, kind, start, end, _), used in zip(reads, values, strict=True):
            seen = self.samples.setdefault((budget.name, kind), [])
            rate = pace(seen, now=now, period_start=start, used=used)
            seen[:] = [(t, v) for t, v in seen if t >= max(start, now - 3600)] + [(now, used)]
            result = forecast(used, float(getattr(budget, kind)), rate, now=now,
                              period_end=end)
            findings.append(forecast_finding(
                {"budget": budget.name, "limit": kind}, result, now=now,
                horizon=rule.horizon, used_ratio=rule.used_ratio))
        return findings

    # ------------------------------------------------------------ ejections

    async def publish_ejections(self, now: float) -> None:
        """Add this worker's ejections since the last call to the shared counters."""
        if self.sources.state is None:
            return
        deltas: list[tuple[str, float]] = []
        minute = int(now // 60)
        for upstream, balancer in self.sources.balancers().items():
            for address, target in balancer.targets.items():
                key = (upstream, address)
                before = self.published.get(key, 0)
                self.published[key] = target.ejections
                if target.ejections > before:
                    deltas.append((f"obs:ej:{upstream}|{address}:{minute}",
                                   float(target.ejections - before)))
        if deltas:
            state = self.sources.state()
            await asyncio.gather(*(state.incr(key, amount, 86400.0 + 120)
                                   for key, amount in deltas))

    async def ejections(self, rule: AlertRule, now: float) -> list[Finding]:
        """Ejections of each target in scope within the rule's window."""
        if self.sources.state is None:
            return []
        await self.publish_ejections(now)
        state = self.sources.state()
        last = int(now // 60)
        minutes = range(last - int(rule.ejection_window) // 60 + 1, last + 1)
        targets = [(upstream, address)
                   for upstream, balancer in sorted(self.sources.balancers().items())
                   if rule.scope.upstream in (None, upstream)
                   for address in balancer.targets]
        counts = await asyncio.gather(*(
            state.incr(f"obs:ej:{upstream}|{address}:{minute}", 0.0, 86400.0 + 120)
            for upstream, address in targets for minute in minutes))
        per = len(minutes)
        return [ejection_finding({"upstream": upstream, "target": address},
                                 sum(counts[n * per:(n + 1) * per]),
                                 window=rule.ejection_window, max_ejections=rule.max_ejections)
                for n, (upstream, address) in enumerate(targets)]

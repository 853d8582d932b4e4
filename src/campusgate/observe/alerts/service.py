"""The alert evaluator: a background task of each worker.

Every ``observe.alerts.interval`` seconds each worker publishes the target ejections
it saw (:meth:`Checks.publish_ejections`) and tries to take the evaluator's lease
(:class:`~campusgate.observe.alerts.history.AlertHistory`); the one that holds it runs
every rule's checks, steps each rule's :class:`RuleTracker`, writes the transitions
to ``alert_events`` and hands them to the webhooks -- whose delivery never holds the
evaluation up.  A failing round (the store unreachable) is logged once per outage and
tried again at the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from campusgate.config.observe_alerts import KINDS, AlertRule, AlertsConfig
from campusgate.observe.alerts.checks import AlertSources, Checks
from campusgate.observe.alerts.history import AlertHistory
from campusgate.observe.alerts.tracker import RuleTracker, Transition
from campusgate.observe.alerts.webhooks import Notifier
from campusgate.observe.analytics import Analytics
from campusgate.observe.sinks._post import Sleep
from campusgate.observe.trends import Finding
from campusgate.store.dsn import async_url
from campusgate.store.engine import create_engine

__all__ = ["AlertService", "default_rules"]

log = logging.getLogger("campusgate.observe.alerts")

#: Seconds between two prunings of the history.
_PRUNE_EVERY = 3600.0


def default_rules(configured: list[AlertRule]) -> list[AlertRule]:
    """The rules ``/observe/trends`` looks through: the configured ones, and the
    defaults of every kind (latency and error rate per route and per upstream) that
    no configured rule covers."""
    kinds = {r.kind for r in configured}
    covered = {(r.kind, r.per) for r in configured}
    extra: list[AlertRule] = []
    for kind in KINDS:
        if kind in ("latency-regression", "error-rate"):
            extra += [_default(kind, per) for per in ("route", "upstream")
                      if (kind, per) not in covered]
        elif kind not in kinds:
            extra.append(_default(kind, "route"))
    return [*configured, *extra]


def _default(kind: str, per: str) -> AlertRule:
    return AlertRule.model_validate({"name": f"default-{kind}-{per}", "kind": kind,
                                     "per": per})


def _event(transition: Transition) -> dict[str, Any]:
    rule, finding = transition.rule, transition.finding
    message = finding.message if transition.state == "firing" else f"resolved: {finding.message}"
    return {"time": transition.time, "rule": rule.name, "kind": rule.kind,
            "state": transition.state, "severity": rule.severity,
            "subject": dict(finding.subject), "key": finding.key, "message": message,
            "value": finding.value, "baseline": finding.baseline,
            "threshold": finding.threshold, "details": dict(finding.details),
            "fired_at": transition.fired_at}


def _finding(event: dict[str, Any]) -> Finding:
    return Finding(event["kind"], event["subject"], True, event["message"], event["value"],
                   event["baseline"], event["threshold"], event["details"])


class AlertService:
    """The rules, their trackers and the history of one worker."""

    def __init__(self, config: AlertsConfig, storage: str, sources: AlertSources, *,
                 holder: str, clock: Callable[[], float] = time.time,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.config = config
        self.holder = holder
        self._clock = clock
        self._sleep = sleep
        self._engine = create_engine(async_url(storage))
        self.history = AlertHistory(self._engine)
        self.checks = Checks(Analytics(self._engine), sources)
        self.notifier = Notifier(config.webhooks, sleep=sleep)
        self.rules = {rule.name: rule for rule in config.rules}
        self.trackers = {name: RuleTracker(rule) for name, rule in self.rules.items()}
        #: Whether this worker held the lease at its last round.
        self.leader = False
        self.last_round: float | None = None
        self._pruned = 0.0
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self.config.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(),
                                                                name="campusgate-alerts")

    async def run(self) -> None:
        while True:
            try:
                await self.evaluate_once()
            except Exception:  # a background task's edge: keep evaluating
                if not self._failing:
                    log.exception("evaluating alert rules failed; retrying every %.0f s",
                                  self.config.interval)
                self._failing = True
            else:
                if self._failing:
                    log.warning("evaluating alert rules works again")
                self._failing = False
            await self._sleep(self.config.interval)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.notifier.close()
        if self.leader:
            with contextlib.suppress(Exception):  # shutting down: the lease expires anyway
                await self.history.release_lease(self.holder)
        await self._engine.dispose()

    # ------------------------------------------------------------ evaluation

    async def evaluate_once(self) -> list[Transition]:
        """One round: the transitions it made (none when another worker evaluates)."""
        if not self.rules:
            return []
        now = self._clock()
        await self.checks.publish_ejections(now)
        if not await self.history.take_lease(self.holder, now, 3 * self.config.interval):
            self.leader = False
            return []
        if not self.leader:
            await self._restore()
            self.leader = True
        transitions: list[Transition] = []
        for name, rule in self.rules.items():
            findings = await self.checks.run(rule, now)
            transitions += self.trackers[name].step(findings, now)
        for transition in transitions:
            event = _event(transition)
            await self.history.record(event)
            self.notifier.notify(transition.rule.webhooks, event)
        self.last_round = now
        if now - self._pruned >= _PRUNE_EVERY:
            self._pruned = now
            await self.history.prune(now - self.config.history)
        return transitions

    async def _restore(self) -> None:
        """Take over what the history says is firing (a previous evaluator's)."""
        self.trackers = {name: RuleTracker(rule) for name, rule in self.rules.items()}
        for event in await self.history.firing():
            tracker = self.trackers.get(event["rule"])
            if tracker is not None:
                tracker.restore(_finding(event), event["time"])

    # ------------------------------------------------------------ the admin API's

    async def trends(self) -> list[Finding]:
        """Every check of the configured rules and the defaults, now (no state changes)."""
        now = self._clock()
        findings: list[Finding] = []
        for rule in default_rules(list(self.rules.values())):
            findings += await self.checks.run(rule, now)
        return findings

    async def rules_state(self) -> list[dict[str, Any]]:
        """Each rule with what is firing (from the history: any worker can answer)
        and, on the evaluating worker, what is pending."""
        firing: dict[str, list[dict[str, Any]]] = {}
        for event in await self.history.firing():
            firing.setdefault(event["rule"], []).append(event)
        out = []
        for name, rule in self.rules.items():
            pending = [{"subject": dict(s.finding.subject), "since": s.since,
                        "message": s.finding.message}
                       for s in self.trackers[name].subjects.values() if s.status == "pending"]
            now_firing = [{"subject": e["subject"], "since": e["time"], "message": e["message"],
                           "value": e["value"], "threshold": e["threshold"]}
                          for e in firing.get(name, [])]
            out.append({"name": name, "kind": rule.kind, "severity": rule.severity,
                        "scope": rule.scope.model_dump(exclude_none=True), "per": rule.per,
                        "webhooks": rule.webhooks,
                        "state": "firing" if now_firing else "pending" if pending else "ok",
                        "firing": now_firing, "pending": pending})
        return out

    async def test(self, name: str) -> dict[str, bool]:
        """Send a test notification of rule ``name`` to its webhooks now, and record
        it; each webhook's outcome.  KeyError for an unknown rule."""
        rule = self.rules[name]
        event = {"time": self._clock(), "rule": rule.name, "kind": rule.kind,
                 "state": "test", "severity": rule.severity, "subject": {}, "key": "",
                 "message": f"test notification of alert rule {rule.name}", "details": {}}
        await self.history.record(event)
        webhooks = {w.name: w for w in self.config.webhooks}
        results = await asyncio.gather(*(self.notifier.send(webhooks[n], event)
                                         for n in rule.webhooks))
        return dict(zip(rule.webhooks, results, strict=True))

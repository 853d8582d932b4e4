"""The state of one alert rule per subject, with hysteresis (sans-IO).

Each evaluation hands :meth:`RuleTracker.step` the rule's findings.  A subject whose
condition holds becomes *pending*; once it has held for the rule's ``for`` it is
*firing* (a ``firing`` transition).  A firing subject whose condition is clear -- or
that has no finding any more: no traffic, a budget gone -- resolves once it has been
clear for ``resolve_after`` (a ``resolved`` transition); a breach meanwhile keeps it
firing.  A pending subject that clears goes back to ok silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from campusgate.config.observe_alerts import AlertRule
from campusgate.observe.trends import Finding

__all__ = ["RuleTracker", "SubjectState", "Transition"]

Status = Literal["pending", "firing"]


@dataclass(slots=True)
class SubjectState:
    status: Status
    #: When the condition began to hold (pending) or the subject fired (firing).
    since: float
    finding: Finding
    #: When a firing subject's condition last turned clear (None: it holds).
    clear_since: float | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    rule: AlertRule
    state: Literal["firing", "resolved"]
    finding: Finding
    time: float
    #: When the subject fired (for ``resolved``: how long it lasted).
    fired_at: float


class RuleTracker:
    """Which subjects of one rule are pending or firing."""

    def __init__(self, rule: AlertRule) -> None:
        self.rule = rule
        self.subjects: dict[str, SubjectState] = {}

    def restore(self, finding: Finding, fired_at: float) -> None:
        """A subject the history says is firing (another worker fired it)."""
        self.subjects[finding.key] = SubjectState("firing", fired_at, finding)

    def step(self, findings: Iterable[Finding], now: float) -> list[Transition]:
        rule = self.rule
        out: list[Transition] = []
        seen: set[str] = set()
        for finding in findings:
            key = finding.key
            seen.add(key)
            state = self.subjects.get(key)
            if finding.breached:
                if state is None:
                    state = self.subjects[key] = SubjectState("pending", now, finding)
                state.finding = finding
                state.clear_since = None
                if state.status == "pending" and now - state.since >= rule.for_:
                    state.status, state.since = "firing", now
                    out.append(Transition(rule, "firing", finding, now, now))
            elif state is not None:
                state.finding = finding  # the latest numbers, for the resolved message
                self._clear(key, state, now, out)
        for key in [k for k in self.subjects if k not in seen]:
            self._clear(key, self.subjects[key], now, out)
        return out

    def _clear(self, key: str, state: SubjectState, now: float,
               out: list[Transition]) -> None:
        if state.status == "pending":
            del self.subjects[key]
            return
        if state.clear_since is None:
            state.clear_since = now
        if now - state.clear_since >= self.rule.resolve_after:
            del self.subjects[key]
            out.append(Transition(self.rule, "resolved", state.finding, now, state.since))

    def firing(self) -> list[SubjectState]:
        return [s for s in self.subjects.values() if s.status == "firing"]


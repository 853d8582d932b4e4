"""Trends (sans-IO): latency and error rate against their own baseline, budgets'
run-out forecasts, targets that keep getting ejected.

Baseline (time-of-day aware).  The recent ``window`` (e.g. the last 15 minutes) is
compared with the same ``window`` at the same time of day on each of the previous
days (:func:`day_spans`): a route that is slow every morning at nine is not flagged
at nine.  A past window counts when it holds ``min_requests``; with fewer than
``min_days`` such days (a new route, a fresh install) the previous hours stand in
(:func:`hour_spans`), and the finding says which basis was used.  The latency
baseline is the median of the past windows' quantiles (one bad day does not move
it); the error-rate baseline is the past windows' errors over their requests.

Regression: the window's quantile above ``factor`` x baseline and above an absolute
``floor_ms`` (a route going from 2 to 5 ms is not news); error rate above baseline +
``delta`` and above ``min_rate``.  The window needs ``min_requests`` too.

Forecast: at the pace of the last hour (linear), when consumption reaches the limit
-- or None when it will not before the period ends.  Ejections: more than N in a
window.  Every result is a :class:`Finding`, breached or not, so that a caller can
tell "fine" from "no data".
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Basis",
    "Finding",
    "Forecast",
    "WindowStats",
    "choose_baseline",
    "day_spans",
    "ejection_finding",
    "error_rate_finding",
    "forecast",
    "forecast_finding",
    "hour_spans",
    "latency_finding",
    "pace",
    "subject_key",
]

Basis = Literal["time-of-day", "recent-hours"]
DAY = 86400
HOUR = 3600


@dataclass(frozen=True, slots=True)
class WindowStats:
    """One window of one subject: its requests, errors and latency quantile (ms)."""

    requests: float
    errors: float
    latency: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


@dataclass(frozen=True, slots=True)
class Finding:
    """What one check found about one subject (a route, a target, a budget)."""

    kind: str
    #: The subject's dimensions, e.g. ``{"route": "roster"}``.
    subject: Mapping[str, str]
    #: Whether the condition holds now.
    breached: bool
    message: str
    value: float | None = None
    baseline: float | None = None
    #: The value past which the condition holds.
    threshold: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return subject_key(self.subject)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": dict(self.subject), "breached": self.breached,
                "message": self.message, "value": self.value, "baseline": self.baseline,
                "threshold": self.threshold, "details": dict(self.details)}


def subject_key(subject: Mapping[str, str]) -> str:
    """A stable text for a subject: ``route=roster`` or ``budget=b,limit=tokens``."""
    return ",".join(f"{name}={subject[name]}" for name in subject)


# --------------------------------------------------------------------- baselines

def day_spans(end: int, window: int, days: int) -> list[tuple[int, int]]:
    """``[start, end)`` of the window ending at ``end``, on each previous day."""
    return [(end - d * DAY - window, end - d * DAY) for d in range(1, days + 1)]


def hour_spans(end: int, window: int, hours: int) -> list[tuple[int, int]]:
    """``[start, end)`` of the window ending at ``end``, 1..``hours`` hours earlier."""
    return [(end - h * HOUR - window, end - h * HOUR) for h in range(1, hours + 1)]


def choose_baseline(days: Sequence[WindowStats], hours: Sequence[WindowStats], *,
                    min_requests: float, min_days: int,
                    ) -> tuple[Basis, list[WindowStats]] | None:
    """The past windows to compare with: the days' when at least ``min_days`` of them
    hold ``min_requests``, else the hours' that do; None when neither has any."""
    full_days = [w for w in days if w.requests >= min_requests]
    if len(full_days) >= min_days:
        return "time-of-day", full_days
    full_hours = [w for w in hours if w.requests >= min_requests]
    if full_hours:
        return "recent-hours", full_hours
    return None


def latency_finding(subject: Mapping[str, str], current: WindowStats,
                    baseline: tuple[Basis, list[WindowStats]] | None, *, factor: float,
                    floor_ms: float, min_requests: float, quantile: str) -> Finding | None:
    """The latency check of one subject; None when there is too little traffic or
    no baseline to judge by."""
    if current.requests < min_requests or current.latency is None or baseline is None:
        return None
    basis, windows = baseline
    values = [w.latency for w in windows if w.latency is not None]
    if not values:
        return None
    normal = statistics.median(values)
    threshold = max(normal * factor, floor_ms)
    breached = current.latency > threshold
    what = f"{quantile} latency of {_describe(subject)}"
    message = (f"{what} is {current.latency:.0f} ms, {current.latency / normal:.1f}x its "
               f"baseline of {normal:.0f} ms ({basis})" if breached and normal > 0 else
               f"{what} is {current.latency:.0f} ms (baseline {normal:.0f} ms, {basis})")
    return Finding("latency-regression", subject, breached, message, current.latency, normal,
                   threshold, {"basis": basis, "requests": current.requests,
                               "baseline_windows": len(values)})


def error_rate_finding(subject: Mapping[str, str], current: WindowStats,
                       baseline: tuple[Basis, list[WindowStats]] | None, *, delta: float,
                       min_rate: float, min_requests: float) -> Finding | None:
    """The error-rate check of one subject (no baseline: judged against 0)."""
    rate = current.error_rate
    if current.requests < min_requests or rate is None:
        return None
    basis: str = "none"
    normal = 0.0
    if baseline is not None:
        basis, windows = baseline
        requests = sum(w.requests for w in windows)
        normal = sum(w.errors for w in windows) / requests if requests else 0.0
    threshold = max(normal + delta, min_rate)
    breached = rate > threshold
    message = (f"error rate of {_describe(subject)} is {rate:.1%} "
               f"(baseline {normal:.1%}, {basis})")
    return Finding("error-rate", subject, breached, message, rate, normal, threshold,
                   {"basis": basis, "requests": current.requests, "errors": current.errors})


def _describe(subject: Mapping[str, str]) -> str:
    return " ".join(f"{name} {value or '(none)'}" for name, value in subject.items())


# --------------------------------------------------------------------- forecasts

@dataclass(frozen=True, slots=True)
class Forecast:
    used: float
    limit: float
    #: Units per second at the current pace (None: unknown yet).
    rate: float | None
    #: Epoch seconds when the limit is reached at that pace (None: not this period).
    exhausted_at: float | None


def pace(samples: Sequence[tuple[float, float]], *, now: float, period_start: float,
         used: float, lookback: float = HOUR, min_span: float = 300.0) -> float | None:
    """Units per second: over the samples ``(time, used)`` of the last ``lookback``
    seconds of this period when they span ``min_span``, else the average since the
    period began (None when it began less than ``min_span`` ago)."""
    since = max(period_start, now - lookback)
    recent = sorted((t, v) for t, v in samples if since <= t <= now)
    if recent and now - recent[0][0] >= min_span:
        first_t, first_v = recent[0]
        return max(0.0, (used - first_v) / (now - first_t))
    elapsed = now - period_start
    if elapsed < min_span:
        return None
    return max(0.0, used / elapsed)


def forecast(used: float, limit: float, rate: float | None, *, now: float,
             period_end: float) -> Forecast:
    """When ``used`` reaches ``limit`` at ``rate`` units per second (linear)."""
    if used >= limit:
        return Forecast(used, limit, rate, now)
    if not rate:
        return Forecast(used, limit, rate, None)
    at = now + (limit - used) / rate
    return Forecast(used, limit, rate, at if at < period_end else None)


def forecast_finding(subject: Mapping[str, str], result: Forecast, *, now: float,
                     horizon: float, used_ratio: float) -> Finding:
    """Breached when the limit is (or will be, within ``horizon``) reached this
    period, or ``used_ratio`` of it is used."""
    share = result.used / result.limit if result.limit else 1.0
    soon = result.exhausted_at is not None and result.exhausted_at - now <= horizon
    breached = soon or share >= used_ratio
    name = _describe(subject)
    if result.used >= result.limit:
        message = f"{name} is used up ({result.used:g} of {result.limit:g})"
    elif result.exhausted_at is not None:
        message = (f"{name} runs out in {_duration(result.exhausted_at - now)} at the current "
                   f"pace ({share:.0%} used)")
    else:
        message = f"{name}: {share:.0%} used; not running out this period at the current pace"
    return Finding("budget-forecast", subject, breached, message, result.used, None,
                   result.limit, {"rate_per_hour": None if result.rate is None
                                  else result.rate * HOUR,
                                  "exhausted_at": result.exhausted_at, "used_ratio": share})


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 2 * HOUR:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * DAY:
        return f"{seconds / HOUR:.1f} h"
    return f"{seconds / DAY:.1f} days"


# --------------------------------------------------------------------- ejections

def ejection_finding(subject: Mapping[str, str], ejections: float, *, window: float,
                     max_ejections: int) -> Finding:
    """A target ejected more than ``max_ejections`` times within ``window`` seconds."""
    breached = ejections > max_ejections
    message = (f"{_describe(subject)} was ejected {ejections:g} time(s) in the last "
               f"{_duration(window)}")
    return Finding("target-ejections", subject, breached, message, ejections, None,
                   float(max_ejections), {"window": window})

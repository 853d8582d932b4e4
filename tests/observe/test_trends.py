"""The trend arithmetic (sans-IO): baselines, regressions, forecasts, ejections, and
the rule tracker's hysteresis."""

from __future__ import annotations

import pytest

from campusgate.config.observe_alerts import AlertRule
from campusgate.observe.alerts.tracker import RuleTracker
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

ROUTE = {"route": "roster"}


def test_baseline_windows_are_the_same_time_of_day_then_the_previous_hours() -> None:
    assert day_spans(100_000, 900, 2) == [(100_000 - 86400 - 900, 100_000 - 86400),
                                          (100_000 - 2 * 86400 - 900, 100_000 - 2 * 86400)]
    assert hour_spans(100_000, 900, 2) == [(100_000 - 3600 - 900, 100_000 - 3600),
                                           (100_000 - 7200 - 900, 100_000 - 7200)]


def test_days_are_preferred_hours_stand_in_and_thin_windows_do_not_count() -> None:
    full, thin = WindowStats(100, 0, 50.0), WindowStats(3, 0, 500.0)
    assert choose_baseline([full, full, thin], [thin], min_requests=50, min_days=2) == (
        "time-of-day", [full, full])
    assert choose_baseline([full, thin], [full, thin], min_requests=50, min_days=2) == (
        "recent-hours", [full])
    assert choose_baseline([thin], [thin], min_requests=50, min_days=1) is None


@pytest.mark.parametrize(("current", "baselines", "breached"), [
    (150.0, [50.0, 52.0, 48.0], True),      # 3x the median
    (90.0, [50.0, 52.0, 48.0], False),      # under 2x
    (150.0, [50.0, 400.0, 48.0], True),     # one bad day does not move the median
    (12.0, [2.0, 2.0, 2.0], False),         # 6x, but under the 50 ms floor
])
def test_latency_regression(current: float, baselines: list[float], breached: bool) -> None:
    baseline = choose_baseline([WindowStats(100, 0, v) for v in baselines], [],
                               min_requests=50, min_days=2)
    found = latency_finding(ROUTE, WindowStats(100, 0, current), baseline, factor=2.0,
                            floor_ms=50.0, min_requests=50, quantile="p95")
    assert found is not None and found.breached is breached
    assert found.threshold == max(2.0 * sorted(baselines)[1], 50.0)


def test_too_little_traffic_or_no_baseline_is_no_finding() -> None:
    baseline = ("time-of-day", [WindowStats(100, 0, 50.0)])
    kw = {"factor": 2.0, "floor_ms": 50.0, "min_requests": 50, "quantile": "p95"}
    assert latency_finding(ROUTE, WindowStats(10, 0, 900.0), baseline, **kw) is None  # type: ignore[arg-type]
    assert latency_finding(ROUTE, WindowStats(100, 0, 900.0), None, **kw) is None  # type: ignore[arg-type]


def test_error_rate_against_baseline_plus_delta() -> None:
    baseline = choose_baseline([WindowStats(1000, 20, None)] * 3, [], min_requests=50,
                               min_days=2)
    kw = {"delta": 0.05, "min_rate": 0.02, "min_requests": 50}
    high = error_rate_finding(ROUTE, WindowStats(100, 10, None), baseline, **kw)  # type: ignore[arg-type]
    usual = error_rate_finding(ROUTE, WindowStats(100, 5, None), baseline, **kw)  # type: ignore[arg-type]
    assert high is not None and high.breached and high.baseline == pytest.approx(0.02)
    assert high.threshold == pytest.approx(0.07)
    assert usual is not None and not usual.breached
    # no history: a baseline of 0
    fresh = error_rate_finding(ROUTE, WindowStats(100, 6, None), None, **kw)  # type: ignore[arg-type]
    assert fresh is not None and fresh.breached and fresh.threshold == pytest.approx(0.05)


def test_pace_uses_the_last_hour_else_the_period_average() -> None:
    start = 0.0
    # 600 used by noon: the period average is 50/h
    assert pace([], now=12 * 3600, period_start=start, used=600) == pytest.approx(600 / 43200)
    # samples 30 min apart: 300 more in 1800 s
    samples = [(12 * 3600 - 1800, 600.0)]
    assert pace(samples, now=12 * 3600, period_start=start, used=900) == pytest.approx(1 / 6)
    # samples older than an hour are ignored
    old = [(12 * 3600 - 7200, 0.0)]
    assert pace(old, now=12 * 3600, period_start=start, used=600) == pytest.approx(600 / 43200)
    assert pace([], now=60, period_start=start, used=5) is None


def test_forecast_when_the_limit_is_reached() -> None:
    day_end = 86400.0
    noon = 43200.0
    result = forecast(600, 1000, 600 / 43200, now=noon, period_end=day_end)
    assert result.exhausted_at == pytest.approx(noon + 8 * 3600)
    assert forecast(600, 1000, 100 / 43200, now=noon, period_end=day_end).exhausted_at is None
    assert forecast(1000, 1000, None, now=noon, period_end=day_end).exhausted_at == noon
    assert forecast(10, 1000, 0.0, now=noon, period_end=day_end).exhausted_at is None
    soon = forecast_finding({"budget": "b", "limit": "tokens"}, result, now=noon,
                            horizon=86400, used_ratio=0.9)
    assert soon.breached and "runs out in 8.0 h" in soon.message
    later = forecast_finding({"budget": "b", "limit": "tokens"}, result, now=noon,
                             horizon=3600, used_ratio=0.9)
    assert not later.breached


def test_ejections_over_the_threshold() -> None:
    subject = {"upstream": "pool", "target": "10.0.0.1:80"}
    assert ejection_finding(subject, 4, window=900, max_ejections=3).breached
    assert not ejection_finding(subject, 3, window=900, max_ejections=3).breached


def _finding(breached: bool, key: str = "roster") -> Finding:
    return Finding("latency-regression", {"route": key}, breached, "m", 1.0, 1.0, 1.0)


def test_tracker_fires_after_for_and_resolves_after_resolve_after() -> None:
    rule = AlertRule.model_validate({"name": "r", "kind": "latency-regression", "for": "2m",
                                     "resolve_after": "3m"})
    tracker = RuleTracker(rule)
    assert tracker.step([_finding(True)], 0) == []            # pending
    assert tracker.step([_finding(True)], 60) == []
    fired = tracker.step([_finding(True)], 120)
    assert [(t.state, t.finding.key) for t in fired] == [("firing", "route=roster")]
    assert tracker.step([_finding(False)], 180) == []         # clear, not yet resolved
    assert tracker.step([_finding(True)], 240) == []          # breached again: still firing
    assert tracker.step([_finding(False)], 300) == []
    assert tracker.step([], 420) == []                        # no data counts as clear
    resolved = tracker.step([_finding(False)], 480)
    assert [(t.state, t.fired_at) for t in resolved] == [("resolved", 120)]
    assert tracker.subjects == {}


def test_a_pending_subject_that_clears_never_fires() -> None:
    rule = AlertRule.model_validate({"name": "r", "kind": "error-rate", "for": 120})
    tracker = RuleTracker(rule)
    tracker.step([_finding(True)], 0)
    assert tracker.step([_finding(False)], 60) == []
    assert tracker.step([_finding(True)], 120) == []          # pending again from 120
    assert tracker.subjects["route=roster"].since == 120

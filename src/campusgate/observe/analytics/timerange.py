"""Time ranges and steps of analytics queries (sans-IO).

A range is absolute -- ``start``/``end`` as ISO 8601 (``2026-11-28T10:00:00Z``; no
zone means UTC) or epoch seconds -- or relative, ``last=24h`` (ending now).  Ranges
are whole minutes (the start rounded down, the end up), ``[start, end)``.  Steps are
durations (``1m``, ``5m``, ``1h``, ``1d``, or seconds), whole minutes, at least one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from campusgate.state.ratelimit import parse_window

__all__ = ["MAX_RANGE", "InvalidQuery", "TimeRange", "parse_instant", "parse_range", "parse_step"]

#: The longest range a query may cover (two years).
MAX_RANGE = 2 * 366 * 86400


class InvalidQuery(ValueError):
    """A query the caller got wrong (the admin API answers 400 with its message)."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """``[start, end)`` in epoch seconds, both whole minutes."""

    start: int
    end: int

    @property
    def seconds(self) -> int:
        return self.end - self.start


def parse_instant(text: str, name: str = "time") -> float:
    """Epoch seconds from ISO 8601 or a number of epoch seconds."""
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise InvalidQuery(f"{name} {text!r} is neither ISO 8601 (2026-11-28T10:00:00Z) "
                           "nor epoch seconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _duration(text: str, name: str) -> float:
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parse_window(value)
        except ValueError:
            raise InvalidQuery(f"{name} {text!r} is not a duration like 90s, 5m, 24h, 7d"
                               ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidQuery(f"{name} must be positive")
    return seconds


def parse_range(*, now: float, last: str | None = None, start: str | None = None,
                end: str | None = None, default_last: float = 3600.0) -> TimeRange:
    """The range of a query: ``last`` (ending at ``end`` or now), or ``start`` (and
    ``end``, default now); with neither, the last ``default_last`` seconds."""
    if last is not None and start is not None:
        raise InvalidQuery("give either last or start, not both")
    stop = parse_instant(end, "end") if end is not None else now
    if start is not None:
        begin = parse_instant(start, "start")
    else:
        begin = stop - (_duration(last, "last") if last is not None else default_last)
    lo = math.floor(begin / 60.0) * 60
    hi = math.ceil(stop / 60.0) * 60
    if hi <= lo:
        raise InvalidQuery("the range is empty: end must be after start")
    if hi - lo > MAX_RANGE:
        raise InvalidQuery("the range is longer than two years")
    return TimeRange(lo, hi)


def parse_step(text: str | None, span: TimeRange, max_points: int = 10_000) -> int:
    """The step in seconds (default: about 60 points over the range)."""
    if text is None:
        wanted = span.seconds / 60.0
        for step in (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400):
            if step >= wanted:
                return step
        return 30 * 86400
    seconds = _duration(text, "step")
    if seconds % 60:
        raise InvalidQuery("step must be a whole number of minutes (1m, 5m, 1h, 1d, ...)")
    step = int(seconds)
    if span.seconds / step > max_points:
        raise InvalidQuery(f"step {text} gives more than {max_points} points over this range;"
                           " use a larger step or a shorter range")
    return step

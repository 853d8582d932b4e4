"""Rate-limit sequences every backend must answer identically (memory and Redis).

Each case: windows, algorithm, and events ``(offset s, cost, allowed, [(remaining,
reset) per window], retry_after)``.  Offsets are seconds after ``T0``, a Unix time
aligned to the hour, so fixed windows start at offset 0.  The expected values are
worked out by hand in the comments (S window, L limit, T = S / L).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from campusgate.state.ratelimit import SLIDING_WINDOW, TOKEN_BUCKET, Decision, Window

T0 = 1_699_999_200  # 472222 hours

Event = tuple[float, int, bool, list[tuple[int, int]], int]


@dataclass
class Case:
    name: str
    algorithm: str
    windows: tuple[Window, ...]
    events: list[Event]


CASES = [
    Case("sliding, one window", SLIDING_WINDOW, (Window("1m", 3, 60),), [
        (0, 1, True, [(2, 60)], 0),
        (10, 1, True, [(1, 50)], 0),
        (20, 1, True, [(0, 40)], 0),
        # estimate 3: full.  Next window: 3 * (60 - e) / 60 + 1 <= 3 at e = 20
        (30, 1, False, [(0, 50)], 50),
        # 3 * 41/60 = 2.05 -> still no room; room at e = 20, one second away
        (79, 1, False, [(0, 1)], 1),
        # 3 * 39/60 = 1.95, + 1 = 2.95 <= 3 -> admitted, floor(3 - 2.95) = 0 left
        (81, 1, True, [(0, 39)], 0),
        # 2.95 + 1 > 3; 3 * (60 - e) / 60 + 1 + 1 <= 3 at e = 40
        (81, 1, False, [(0, 19)], 19),
        # long idle: fresh; a cost above the limit never fits (retry: the window)
        (200, 5, False, [(3, 60)], 60),
        (200, 3, True, [(0, 40)], 0),
    ]),
    Case("sliding, two windows", SLIDING_WINDOW,
         (Window("10s", 2, 10), Window("1m", 3, 60)), [
        (0, 1, True, [(1, 10), (2, 60)], 0),
        (1, 1, True, [(0, 9), (1, 59)], 0),
        # 10s full (next window: 2 * (10 - e) / 10 + 1 <= 2 at e = 5: 8 + 5 s);
        # the denied request is not counted in 1m
        (2, 1, False, [(0, 13), (1, 58)], 13),
        (15, 1, True, [(0, 5), (0, 45)], 0),
        # 10s: 2 * 0.4 + 1 + 1 > 2, fits at e = 10 (4 s); 1m: next window at e = 20
        (16, 1, False, [(0, 4), (0, 64)], 64),
    ]),
    Case("token bucket, one window", TOKEN_BUCKET, (Window("1m", 3, 60),), [
        # T = 20 s: three back-to-back, then one every 20 s
        (0, 1, True, [(2, 20)], 0),
        (0, 1, True, [(1, 40)], 0),
        (0, 1, True, [(0, 60)], 0),
        (0, 1, False, [(0, 20)], 20),
        (5, 1, False, [(0, 15)], 15),
        (20, 1, True, [(0, 60)], 0),
        (50, 1, True, [(0, 50)], 0),
        (75, 1, True, [(0, 45)], 0),
        # idle: TAT 120 < 200
        (200, 1, True, [(2, 20)], 0),
        (200, 3, False, [(2, 20)], 20),
        (200, 2, True, [(0, 60)], 0),
        (1000, 4, False, [(3, 60)], 60),
    ]),
    Case("token bucket, two windows", TOKEN_BUCKET,
         (Window("1s", 2, 1), Window("1h", 3, 3600)), [
        (0, 1, True, [(1, 1), (2, 1200)], 0),
        (0, 1, True, [(0, 1), (1, 2400)], 0),
        (0, 1, False, [(0, 1), (1, 2400)], 1),
        (1, 1, True, [(1, 1), (0, 3599)], 0),
        # 1h: TAT 3600 - 2 * 1200 > 2 -> 1198 s to wait
        (2, 1, False, [(2, 0), (0, 1198)], 1198),
        (2.5, 1, False, [(2, 0), (0, 1198)], 1198),
    ]),
]


class Clock:
    """A settable clock (seconds)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def random_windows(rng: random.Random) -> tuple[Window, ...]:
    return tuple(
        Window(f"w{i}", rng.randint(1, 12), rng.choice([1, 2, 5, 10, 60]))
        for i in range(rng.randint(1, 3))
    )


def random_steps(rng: random.Random, count: int = 300) -> Iterator[tuple[float, int]]:
    """``(dt, cost)``: gaps from 0 to a few windows (whole microseconds), mostly
    cost 1."""
    for _ in range(count):
        dt = rng.choice([0, 0, 0, 0, 1e-6, 0.05, 0.3, 1, 2.5, 7, 40])
        if rng.random() < 0.5:
            dt += rng.randint(0, 999_999) / 1_000_000
        yield dt, (1 if rng.random() < 0.8 else rng.randint(1, 4))


def outcome(decision: Decision) -> tuple[bool, list[tuple[int, int]], int]:
    return (
        decision.allowed,
        [(s.remaining, s.reset) for s in decision.windows],
        decision.retry_after,
    )


def expected(event: Event) -> tuple[bool, list[tuple[int, int]], int]:
    return event[2], event[3], event[4]

"""Rate-limit arithmetic: sans-IO, plain values in, a :class:`Decision` out.

Two algorithms check several windows of one key at once.  A request is admitted only
if every window admits it, and only an admitted request is counted: a denied request
consumes nothing.  Each request costs ``cost`` units (1 by default).

Time is an integer number of microseconds (``now_us``), so that the in-process
backend and the Redis script (``state/scripts.py``) compute bit-for-bit the same
answers: GCRA runs on exact integers, and the sliding-window estimate uses the same
IEEE double operations in the same order in Python and in Lua.

``sliding-window`` -- the sliding window counter.  Time is cut into fixed windows of
``S`` microseconds (``k = now // S``, offset ``e = now % S``); the estimate is::

    estimate = previous * (S - e) / S + current

and a request fits if ``estimate + cost <= limit``.  In the first window of a key
``previous`` is 0 and the count is exact.

``token-bucket`` -- GCRA, the generic cell rate algorithm (ITU-T I.371).  Per window:
emission interval ``T = S / limit`` (rounded up to whole microseconds), burst
tolerance ``S - T``, stored value TAT, the theoretical arrival time::

    tat = max(TAT, now)
    admitted  iff  tat + cost * T - limit * T <= now      then TAT = tat + cost * T

so a fresh key admits exactly ``limit`` back-to-back requests.

Headers follow draft-ietf-httpapi-ratelimit-headers-11: ``RateLimit-Policy`` (section
3) lists every window, ``RateLimit`` (section 4) reports the most restrictive one, and
a denied request also gets ``Retry-After`` (RFC 9110, section 10.2.3) no earlier than
the end of the effective window the ``RateLimit`` field reports (draft section 6).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

__all__ = [
    "ALGORITHMS",
    "SLIDING_WINDOW",
    "TOKEN_BUCKET",
    "Decision",
    "Window",
    "WindowStatus",
    "check_request",
    "gcra_decision",
    "parse_window",
    "policy_header_value",
    "rate_limit_headers",
    "sliding_counts",
    "sliding_decision",
]

SLIDING_WINDOW = "sliding-window"
TOKEN_BUCKET = "token-bucket"
ALGORITHMS = (SLIDING_WINDOW, TOKEN_BUCKET)

US = 1_000_000
_UNITS = MappingProxyType(
    {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400}
)
#: Ten years: keeps microsecond sums exact in Lua's doubles (below 2^53).
_MAX_SECONDS = 10 * 365 * 86400
_WINDOW_RE = re.compile(r"([1-9][0-9]*)(s|m|h|d|w|mo)")


def parse_window(text: str) -> float:
    """``"1s"``, ``"10s"``, ``"1m"``, ``"1h"``, ``"1d"``, ``"1w"``, ``"30d"``, ``"1mo"``
    (a month is 30 days) -> seconds."""
    match = _WINDOW_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"bad window {text!r}: expected a count and a unit (s, m, h, d, w, mo), e.g. 1m"
        )
    return float(int(match[1]) * _UNITS[match[2]])


@dataclass(frozen=True, slots=True)
class Window:
    """One limit: at most ``limit`` units per ``seconds``, called ``name`` in headers."""

    name: str
    limit: int
    seconds: float
    #: The window in whole microseconds (sliding-window size).
    us: int = field(init=False, repr=False, compare=False)
    #: GCRA emission interval in whole microseconds (rounded up).
    interval_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name or not all(" " <= ch <= "~" for ch in self.name):
            raise ValueError(f"window name {self.name!r} must be printable ASCII")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ValueError(f"window {self.name!r}: limit must be an integer >= 1")
        if not 0.001 <= self.seconds <= _MAX_SECONDS:
            raise ValueError(
                f"window {self.name!r}: seconds must be from 0.001 to {_MAX_SECONDS}"
            )
        us = round(self.seconds * US)
        object.__setattr__(self, "us", us)
        object.__setattr__(self, "interval_us", -(-us // self.limit))

    @classmethod
    def of(cls, text: str, limit: int) -> Window:
        """``Window.of("1m", 100)``: named after its text."""
        return cls(text.strip(), limit, parse_window(text))


class WindowStatus(NamedTuple):
    """One window after a decision.

    ``remaining`` is what the window would still admit (>= 0).  ``reset`` is whole
    seconds until quota comes back: for sliding-window the end of the current fixed
    window, for token-bucket the time until the bucket is full; in a window that
    denied the request, the time until the request would fit.
    """

    window: Window
    remaining: int
    reset: int

    @property
    def name(self) -> str:
        return self.window.name

    @property
    def limit(self) -> int:
        return self.window.limit


class Decision(NamedTuple):
    """The answer for one request.  ``retry_after`` is 0 when ``allowed``, else the
    whole seconds (>= 1) until every window would admit it, absent other traffic."""

    allowed: bool
    windows: tuple[WindowStatus, ...]
    retry_after: int = 0

    @property
    def current(self) -> WindowStatus:
        """The most restrictive window: least remaining, then the longest reset."""
        windows = self.windows
        if len(windows) == 1:
            return windows[0]
        return min(windows, key=_restrictiveness)


def _restrictiveness(status: WindowStatus) -> tuple[int, int]:
    return status.remaining, -status.reset


def _seconds(us: float) -> int:
    """Microseconds -> whole seconds, rounded up."""
    return max(0, math.ceil(us / US))


def check_request(windows: Sequence[Window], algorithm: str, cost: int) -> None:
    """Reject a call no backend can answer (a programming error, not a denial)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown rate-limit algorithm {algorithm!r}")
    if not windows:
        raise ValueError("a rate limit needs at least one window")
    if cost < 1:
        raise ValueError("cost must be >= 1")


# ---------------------------------------------------------------- sliding window


def sliding_counts(
    window: Window, stored: tuple[int, int, int] | None, now_us: int
) -> tuple[int, int]:
    """``(current, previous)`` as seen at ``now_us``, from the stored
    ``(k, count of fixed window k, count of window k - 1)``; the current fixed
    window is ``now_us // window.us``."""
    if stored is None:
        return 0, 0
    k = now_us // window.us
    if stored[0] == k:
        return stored[1], stored[2]
    if stored[0] == k - 1:
        return 0, stored[1]
    return 0, 0


def _sliding_wait(window: Window, current: int, previous: int, offset: int, cost: int) -> float:
    """Microseconds until ``cost`` more fits (the estimate only falls with time)."""
    size, limit = window.us, window.limit
    if cost > limit:
        return size  # never fits; advise the window's length
    room = limit - cost - current
    if room >= 0:  # previous > 0: it decays within this window
        return max(0.0, size - room * size / previous - offset)
    # next window: current becomes previous and decays
    return (size - offset) + max(0.0, size - (limit - cost) * size / current)


def sliding_decision(
    windows: Sequence[Window],
    counts: Sequence[tuple[int, int]],
    now_us: int,
    cost: int = 1,
    allowed: bool | None = None,
) -> Decision:
    """Decide on ``(current, previous)`` counts (from :func:`sliding_counts`, before
    this request).  ``allowed`` overrides the verdict (the Redis script already made
    it, atomically).

    The estimate is ``previous * ((S - e) / S) + current``: the same double
    operations, in the same order, as the Lua script.
    """
    if allowed is None:
        allowed = all(
            previous * ((w.us - now_us % w.us) / w.us) + current + cost <= w.limit
            for w, (current, previous) in zip(windows, counts, strict=True)
        )
    statuses = []
    retry = 0
    for w, (current, previous) in zip(windows, counts, strict=True):
        size = w.us
        left = size - now_us % size
        estimate = previous * (left / size) + current
        if allowed:
            estimate += cost
            reset = _seconds(left)
        elif estimate + cost <= w.limit:
            reset = _seconds(left)
        else:
            wait = _sliding_wait(w, current, previous, size - left, cost)
            reset = max(1, _seconds(wait))
            retry = max(retry, reset)
        statuses.append(WindowStatus(w, max(0, math.floor(w.limit - estimate)), reset))
    return Decision(allowed, tuple(statuses), 0 if allowed else max(1, retry))


# ---------------------------------------------------------------- GCRA


def gcra_decision(
    windows: Sequence[Window],
    tats: Sequence[int],
    now_us: int,
    cost: int = 1,
    allowed: bool | None = None,
) -> Decision:
    """Decide on each window's ``tat = max(TAT, now)`` before this request.

    The new TAT of an admitted request is ``tat + cost * window.interval_us``.
    ``allowed`` overrides the verdict (the Redis script already made it, atomically).
    """
    if allowed is None:
        allowed = all(
            tat + (cost - w.limit) * w.interval_us <= now_us
            for w, tat in zip(windows, tats, strict=True)
        )
    statuses = []
    retry = 0
    for w, tat in zip(windows, tats, strict=True):
        interval = w.interval_us
        if allowed:
            tat += cost * interval
            reset = _seconds(tat - now_us)
        else:
            wait = tat + (cost - w.limit) * interval - now_us
            if wait <= 0:
                reset = _seconds(tat - now_us)
            else:
                reset = max(1, _seconds(w.us if cost > w.limit else wait))
                retry = max(retry, reset)
        remaining = (now_us + w.limit * interval - tat) // interval
        statuses.append(WindowStatus(w, max(0, remaining), reset))
    return Decision(allowed, tuple(statuses), 0 if allowed else max(1, retry))


# ---------------------------------------------------------------- headers


@functools.cache
def _sf_string(text: str) -> str:
    """An RFC 8941 sString (section 3.3.3); window names are few, so remembered."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.cache
def _sf_bytes(text: str) -> bytes:
    return _sf_string(text).encode("ascii")


def policy_header_value(windows: Sequence[Window]) -> bytes:
    """``RateLimit-Policy`` (draft section 3): ``"1m";q=100;w=60, "1h";q=1000;w=3600``.

    The value only depends on the windows: callers may compute it once.
    """
    return ", ".join(
        f"{_sf_string(w.name)};q={w.limit};w={max(1, math.ceil(w.seconds))}" for w in windows
    ).encode("ascii")


def rate_limit_headers(
    decision: Decision, policy: bytes | None = None
) -> list[tuple[bytes, bytes]]:
    """``ratelimit-policy``, ``ratelimit`` (the most restrictive window, draft section
    4) and, when denied, ``retry-after``; lower-case names.  ``policy`` is a value from
    :func:`policy_header_value`, computed here when omitted."""
    if policy is None:
        policy = policy_header_value([s.window for s in decision.windows])
    current = decision.current
    value = b"%s;r=%d;t=%d" % (_sf_bytes(current.window.name), current.remaining,
                               current.reset)
    headers = [(b"ratelimit-policy", policy), (b"ratelimit", value)]
    if not decision.allowed:
        headers.append((b"retry-after", str(decision.retry_after).encode("ascii")))
    return headers

"""Rate-limit arithmetic: windows, the two algorithms, the draft's header syntax."""

from __future__ import annotations

import pytest

from campusgate.state.ratelimit import (
    Decision,
    Window,
    WindowStatus,
    check_request,
    gcra_decision,
    parse_window,
    policy_header_value,
    rate_limit_headers,
    sliding_counts,
    sliding_decision,
)

US = 1_000_000


@pytest.mark.parametrize("text, seconds", [
    ("1s", 1), ("10s", 10), ("1m", 60), ("1h", 3600), ("1d", 86400), ("1w", 604800),
    ("30d", 2_592_000), ("1mo", 2_592_000), ("2mo", 5_184_000), (" 5m ", 300),
])
def test_parse_window(text: str, seconds: float) -> None:
    assert parse_window(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "m", "0s", "-1s", "1.5m", "1y", "1 m", "1M", "01s"])
def test_parse_window_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad window"):
        parse_window(text)


def test_window_of_names_itself_after_its_text() -> None:
    assert Window.of("1h", 1000) == Window("1h", 1000, 3600.0)
    assert Window.of("1h", 7).interval_us == -(-3600 * US // 7)


@pytest.mark.parametrize("name, limit, seconds", [
    ("x", 0, 1), ("x", True, 1), ("x", 1, 0), ("x", 1, 0.0001), ("x", 1, float("inf")),
    ("x", 1, float("nan")), ("x", 1, 11 * 365 * 86400),
    ("", 1, 1), ("é", 1, 1), ("a\nb", 1, 1),
])
def test_window_rejects(name: str, limit: int, seconds: float) -> None:
    with pytest.raises(ValueError):
        Window(name, limit, seconds)


def test_check_request() -> None:
    w = (Window("1s", 1, 1),)
    check_request(w, "sliding-window", 1)
    for windows, algorithm, cost in [(w, "leaky", 1), ((), "token-bucket", 1),
                                     (w, "token-bucket", 0)]:
        with pytest.raises(ValueError):
            check_request(windows, algorithm, cost)


# ---------------------------------------------------------------- sliding window


def test_sliding_counts_follow_the_fixed_windows() -> None:
    w = Window("1m", 10, 60)
    k = 1000
    now = k * 60 * US + 5 * US
    assert sliding_counts(w, None, now) == (0, 0)
    assert sliding_counts(w, (k, 4, 2), now) == (4, 2)       # same window
    assert sliding_counts(w, (k - 1, 4, 2), now) == (0, 4)   # current became previous
    assert sliding_counts(w, (k - 2, 4, 2), now) == (0, 0)   # too old


def test_sliding_first_window_is_exact() -> None:
    w = Window("1m", 5, 60)
    now = 7 * 60 * US + 59 * US  # late in the window: nothing from before counts
    counts = (0, 0)
    for n in range(5):
        d = sliding_decision([w], [counts], now, 1)
        assert d.allowed and d.windows[0].remaining == 4 - n
        counts = (counts[0] + 1, 0)
    assert not sliding_decision([w], [counts], now, 1).allowed


def test_sliding_weighs_the_previous_window() -> None:
    w = Window("1m", 10, 60)
    at = 60 * US + 15 * US  # a quarter into the window: 3/4 of the previous counts
    # previous 8 -> 6 counted; current 3: 9, room for 1
    assert sliding_decision([w], [(3, 8)], at, 1).allowed
    assert not sliding_decision([w], [(3, 8)], at, 2).allowed
    assert sliding_decision([w], [(3, 8)], at, 1).windows[0].remaining == 0


def test_denied_sliding_request_waits_until_it_fits() -> None:
    w = Window("10s", 4, 10)
    d = sliding_decision([w], [(2, 4)], 2 * US, 1)  # 4 * 0.8 + 2 = 5.2 > 3
    # fits when 4 * (10 - e) / 10 + 2 + 1 <= 4, at e = 7.5: 5.5 s away
    assert (d.allowed, d.retry_after, d.windows[0].reset) == (False, 6, 6)


# ---------------------------------------------------------------- GCRA


@pytest.mark.parametrize("limit, seconds", [(1, 1), (3, 60), (7, 60), (100, 1), (1000, 3600)])
def test_gcra_fresh_key_admits_exactly_the_limit_back_to_back(limit: int, seconds: float) -> None:
    w = Window("w", limit, seconds)
    now = 1_700_000_000 * US
    tat = now
    for n in range(limit):
        d = gcra_decision([w], [tat], now, 1)
        assert d.allowed, n
        assert d.windows[0].remaining == limit - 1 - n
        tat += w.interval_us
    d = gcra_decision([w], [tat], now, 1)
    assert not d.allowed
    assert d.retry_after == -(-w.interval_us // US)


def test_gcra_refills_one_unit_per_interval() -> None:
    w = Window("1m", 6, 60)  # T = 10 s
    now = 10**15
    full = now + 60 * US  # six requests just made
    assert not gcra_decision([w], [full], now + 9 * US, 1).allowed
    d = gcra_decision([w], [full], now + 10 * US, 1)
    assert d.allowed and d.windows[0].remaining == 0
    d = gcra_decision([w], [full], now + 30 * US, 1)
    assert d.allowed and d.windows[0].remaining == 2
    assert d.windows[0].reset == 40  # until full again


def test_gcra_cost() -> None:
    w = Window("1m", 10, 60)
    now = 10**15
    assert gcra_decision([w], [now], now, 10).allowed
    # T = 6 s; TAT 50 s ahead: 10/6 units left, a third of a unit (2 s) short of 2
    d = gcra_decision([w], [now + 50 * US], now, 2)
    assert (d.allowed, d.windows[0].remaining, d.retry_after) == (False, 1, 2)


def test_allowed_override_wins() -> None:
    """Redis already decided atomically; Python only derives the numbers."""
    w = Window("1m", 1, 60)
    assert not gcra_decision([w], [0], 0, 1, allowed=False).allowed
    assert not sliding_decision([w], [(0, 0)], 0, 1, allowed=False).allowed


# ---------------------------------------------------------------- headers


def decision(allowed: bool, *statuses: tuple[str, int, int, int], retry: int = 0) -> Decision:
    return Decision(allowed, tuple(WindowStatus(Window(n, q, w), r, t)
                                   for n, q, w, r, t in statuses), retry)


def test_current_is_the_least_remaining_then_the_longest_reset() -> None:
    d = decision(True, ("1m", 100, 60, 42, 17), ("1h", 1000, 3600, 900, 3000))
    assert d.current.name == "1m"
    d = decision(False, ("1s", 2, 1, 0, 1), ("1h", 3, 3600, 0, 1198), retry=1198)
    assert d.current.name == "1h"


def test_headers_of_an_admitted_request() -> None:
    d = decision(True, ("1m", 100, 60, 42, 17), ("1h", 1000, 3600, 900, 3000))
    assert rate_limit_headers(d) == [
        (b"ratelimit-policy", b'"1m";q=100;w=60, "1h";q=1000;w=3600'),
        (b"ratelimit", b'"1m";r=42;t=17'),
    ]


def test_headers_of_a_denied_request_carry_retry_after() -> None:
    d = decision(False, ("10s", 2, 10, 0, 4), ("1m", 3, 60, 0, 64), retry=64)
    policy = policy_header_value([s.window for s in d.windows])
    assert rate_limit_headers(d, policy) == [
        (b"ratelimit-policy", b'"10s";q=2;w=10, "1m";q=3;w=60'),
        (b"ratelimit", b'"1m";r=0;t=64'),
        (b"retry-after", b"64"),
    ]


def test_policy_names_are_sf_strings_and_windows_whole_seconds() -> None:
    assert policy_header_value([Window('a"b\\c', 5, 0.5)]) == b'"a\\"b\\\\c";q=5;w=1'

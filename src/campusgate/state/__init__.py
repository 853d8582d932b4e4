"""Shared fast state: rate-limit counters and short-lived keys (ARCHITECTURE decision 5).

``open_state("memory")`` gives the in-process backend, ``open_state("redis://...")``
the Redis one; both implement :class:`StateBackend`.  See docs/state.md.
"""

from __future__ import annotations

from campusgate.state.base import StateBackend, StateUnavailable
from campusgate.state.memory import MemoryState
from campusgate.state.ratelimit import (
    ALGORITHMS,
    SLIDING_WINDOW,
    TOKEN_BUCKET,
    Decision,
    Window,
    WindowStatus,
    parse_window,
    policy_header_value,
    rate_limit_headers,
)
from campusgate.state.redis import RedisState

__all__ = [
    "ALGORITHMS",
    "SLIDING_WINDOW",
    "TOKEN_BUCKET",
    "Decision",
    "MemoryState",
    "RedisState",
    "StateBackend",
    "StateUnavailable",
    "Window",
    "WindowStatus",
    "open_state",
    "parse_window",
    "policy_header_value",
    "rate_limit_headers",
]


def open_state(url: str, prefix: str = "cg:") -> StateBackend:
    """``"memory"`` -> :class:`MemoryState`; ``"redis://host:port/db"`` (password in
    the URL, ``rediss://`` for TLS) -> :class:`RedisState`, which connects on first
    use."""
    if url == "memory":
        return MemoryState()
    if url.startswith(("redis://", "rediss://")):
        return RedisState(url, prefix)
    raise ValueError(f"state must be memory or redis://host:port/db, not {url!r}")

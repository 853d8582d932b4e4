"""Parsing wrk's text report (``wrk --latency``) into numbers, and the median of runs."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

__all__ = ["WrkError", "WrkResult", "median_result", "parse_duration", "parse_wrk"]

_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class WrkError(ValueError):
    """wrk's output did not have the numbers a benchmark needs."""


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run. Latencies are in milliseconds."""

    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int = 0
    socket_errors: int = 0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def parse_duration(text: str) -> float:
    """``"101.70us"`` -> 0.0001017 (seconds)."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*(us|ms|s|m|h)\s*", text)
    if not match:
        raise WrkError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_S[match.group(2)]


def _ms(text: str) -> float:
    return round(parse_duration(text) * 1000.0, 4)


def parse_wrk(output: str) -> WrkResult:
    """Read requests/s, the latency distribution and errors from ``wrk --latency`` output."""
    rps = re.search(r"^Requests/sec:\s*([0-9.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in ([0-9.]+\w+)", output, re.M)
    if not rps or not total:
        raise WrkError("no 'Requests/sec' / 'N requests in' lines in wrk output:\n" + output)
    percentiles: dict[int, float] = {}
    for pct, value in re.findall(r"^\s*(50|75|90|99)%\s+([0-9.]+\w+)\s*$", output, re.M):
        percentiles[int(pct)] = _ms(value)
    if set(percentiles) != {50, 75, 90, 99}:
        raise WrkError("no latency distribution in wrk output (run wrk with --latency)")
    latency = re.search(r"^\s*Latency\s+\S+\s+\S+\s+([0-9.]+\w+)", output, re.M)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests=int(total.group(1)),
        duration_s=parse_duration(total.group(2)),
        rps=float(rps.group(1)),
        p50_ms=percentiles[50],
        p75_ms=percentiles[75],
        p90_ms=percentiles[90],
        p99_ms=percentiles[99],
        max_ms=_ms(latency.group(1)) if latency else 0.0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sock.groups()) if sock else 0,
    )


def median_result(runs: list[WrkResult]) -> WrkResult:
    """The run with the median throughput (a real run, so its numbers stay consistent).

    With an even count the lower middle run is taken.
    """
    if not runs:
        raise ValueError("no runs")
    ordered = sorted(runs, key=lambda r: r.rps)
    return ordered[(len(ordered) - 1) // 2]


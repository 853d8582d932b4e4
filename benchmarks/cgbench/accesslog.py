"""The ``access-log`` scenario: what access logging costs the proxy.

Two campusgate instances with the plain scenario's one catch-all route, in the same
run: one with the default ``observe:`` section (what a user gets: each request's
record through the queue and the batch writer into the store sink, the roll-ups
stage and the metrics stage) and one with ``observe: {access_log: {enabled:
false}}`` -- the same config every other scenario uses for its reference, the
"plain-proxy throughput" of issue 7.  Their wrk runs alternate (off, on, on, off...)
so a slow spell of the shared machine falls on both.  Goal: logging on >= 0.9x
logging off, by throughput; the worker's CPU per request is reported for both.

After the load, the logging instance's store must hold a record for every request
it answered and roll-up rows, and the other's none: otherwise the run would have
measured a pipeline that did not write.  Everything here is pure (the runner is
``cgbench/accesslog_bench.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cgbench.configs import campusgate_yaml

__all__ = ["ACCESS_LOG", "GOAL", "MODES", "RUNS", "accesslog_goals", "accesslog_rows",
           "accesslog_yaml", "check_store"]

ACCESS_LOG = "access-log"
#: Throughput with logging on, as a fraction of the same proxy's without.
GOAL = 0.9
#: The two instances: logging off (the reference) and on (the defaults).
MODES = ("off", "on")
#: wrk runs of each instance at least, whatever ``--runs`` says, in the order off,
#: on, on, off, ...: the goal is a ratio of two medians, and with 3 runs each on the
#: shared machine it moved from 0.82x to 0.93x between two runs of the same code.
RUNS = 7

GoalFields = tuple[str, str, float, str, str, bool, str]


def accesslog_yaml(mode: str, *, proxy_port: int, admin_port: int, upstream_port: int,
                   storage: Path) -> str:
    """The plain route, with the default access log (``on``) or none (``off``)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: choose from {', '.join(MODES)}")
    return campusgate_yaml(proxy_port=proxy_port, admin_port=admin_port,
                           upstream_port=upstream_port, storage=storage,
                           access_log=mode == "on")


def check_store(mode: str, records: int, rollups: int, answered: int) -> str | None:
    """Why the store's counts after the load do not fit ``mode`` (None: they do).

    ``answered``: the requests the instance answered, warm-ups and probes included
    (wrk's counts); every one must have its record when logging is on.
    """
    if mode == "off":
        return None if records == 0 else f"logging off, yet {records:,} access records"
    if records < answered:
        return (f"{records:,} access records for {answered:,} requests: the writer "
                "dropped or lost records")
    if rollups == 0:
        return "no roll-up rows: the roll-ups stage did not write"
    return None


def _rps(cell: dict[str, Any]) -> float:
    return float(cell["median"]["rps"])


def _cpu(cell: dict[str, Any]) -> float | None:
    """CPU per request of the worker and its log writer (us), or None."""
    worker = cell.get("cpu_us_per_request")
    return float(worker) + float(cell.get("writer_cpu_us_per_request") or 0.0) \
        if worker else None


def _ratios(cells: dict[str, Any]) -> tuple[float, float | None]:
    """(throughput on/off, CPU per request -- worker and log writer -- off/on or None)."""
    on, off = cells["on"], cells["off"]
    cpu_on, cpu_off = _cpu(on), _cpu(off)
    cpu = cpu_off / cpu_on if cpu_on and cpu_off else None
    return _rps(on) / _rps(off), cpu


def accesslog_goals(scenarios: dict[str, Any]) -> list[GoalFields]:
    goals: list[GoalFields] = []
    for body, cells in scenarios.get(ACCESS_LOG, {}).get("bodies", {}).items():
        if "on" not in cells or "off" not in cells:
            continue
        ratio, cpu = _ratios(cells)
        detail = f"{_rps(cells['on']):,.0f} vs {_rps(cells['off']):,.0f} req/s"
        if cpu is not None:
            on = cells["on"]
            detail += (f"; by CPU per request (worker and log writer) {cpu:.3f}x "
                       f"({_cpu(on):.1f}, of which the writer "
                       f"{on.get('writer_cpu_us_per_request') or 0.0:.1f}, vs "
                       f"{_cpu(cells['off']):.1f} us)")
        goals.append((f"{ACCESS_LOG} ({body})", "throughput logging on / off", ratio, "x",
                      f">= {GOAL}x", ratio >= GOAL, detail))
    return goals


def accesslog_rows(scenarios: dict[str, Any]) -> list[str]:
    """The README table of ``access-log``."""
    run = scenarios.get(ACCESS_LOG)
    if not run:
        return []
    lines = ["", "**access-log** (campusgate, the plain route; `on` = the default "
                 "`observe:` (store sink on SQLite, roll-ups, metrics), `off` = "
                 "`access_log: {enabled: false}`; runs alternate; ratio = req/s over "
                 "off's; CPU = the CPU time per request over all runs of the worker and of "
                 "its log-writer process, on the same pinned CPU)", "",
             "| access log | body | req/s (median) | ratio | p50 ms | p99 ms | CPU us/req "
             "| of which writer | CPU ratio | errors (all runs) | req/s of each run |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for body, cells in run.get("bodies", {}).items():
        for mode in MODES:
            cell = cells.get(mode)
            if not cell:
                continue
            m = cell["median"]
            ratio, cpu_ratio = _ratios(cells) if mode == "on" else (1.0, 1.0)
            cpu = _cpu(cell)
            writer = cell.get("writer_cpu_us_per_request")
            runs = ", ".join(f"{r['rps']:,.0f}" for r in cell["runs"])
            errors = sum(int(r["non_2xx"]) + int(r["socket_errors"]) for r in cell["runs"])
            lines.append(f"| {mode} | {body} | {m['rps']:,.0f} | {ratio:.3f}x "
                         f"| {m['p50_ms']:.3f} | {m['p99_ms']:.3f} "
                         f"| {f'{cpu:,.1f}' if cpu else '-'} "
                         f"| {f'{writer:,.1f}' if writer is not None else '-'} "
                         f"| {f'{cpu_ratio:.3f}x' if cpu_ratio else '-'} | {errors} "
                         f"| {runs} |")
    store = run.get("store")
    if store:
        lines += ["", f"After the load the logging instance's store held "
                      f"{store['records']:,} access records for {store['answered']:,} "
                      f"requests answered, and {store['rollups']:,} roll-up rows."]
    return lines

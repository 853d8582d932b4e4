"""The ``access-log`` scenario as run (``cgbench/accesslog.py`` describes it).

Both instances run at once, pinned to the proxy CPU (the idle one costs nothing);
wrk alternates between them, run by run, and the worker's CPU time is read around
each run.  Afterwards the store of each is counted (``sqlite3``, read-only) and
checked against the requests answered.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cgbench.accesslog import ACCESS_LOG, MODES, RUNS, accesslog_yaml, check_store
from cgbench.procs import StartError, children_cpu_seconds, cpu_seconds, free_port
from cgbench.wrk import WrkResult, median_result

if TYPE_CHECKING:
    from cgbench.bench import Bench

__all__ = ["AccessLogBench"]

#: Seconds to wait for the last records and roll-ups to reach the store.
SETTLE_S = 15.0


#: Access records are kept in segments (``observe/segments.py``): count their records.
RECORDS_SQL = "SELECT coalesce(sum(records), 0) FROM access_segments"
ROLLUPS_SQL = "SELECT count(*) FROM rollups"


def _count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


class AccessLogBench:
    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    def run(self) -> None:
        b = self.bench
        s = b.settings
        instances: dict[str, tuple[int, int]] = {}
        for mode in MODES:
            name = f"campusgate-log-{mode}"
            port, admin = free_port(), free_port()
            text = accesslog_yaml(mode, proxy_port=port, admin_port=admin,
                                  upstream_port=b.upstream_port,
                                  storage=b.home(name) / "campusgate.db")
            instances[mode] = (port, b.launch_campusgate(name, text, port, admin))
        answered = dict.fromkeys(MODES, 0)
        bodies: dict[str, Any] = {}
        for body, path in b.bodies().items():
            runs: dict[str, list[WrkResult]] = {mode: [] for mode in MODES}
            rows: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
            for mode, (port, _) in instances.items():
                if s.warmup:
                    answered[mode] += b.wrk(port, path, s.warmup).requests
            for run in range(max(s.runs, RUNS)):
                order = list(instances.items())
                for mode, (port, pid) in order[::-1] if run % 2 else order:
                    before = cpu_seconds(pid)
                    before_writer = children_cpu_seconds(pid)
                    result = b.wrk(port, path, s.duration)
                    row: dict[str, Any] = result.as_dict()
                    row["worker_cpu_s"] = round(cpu_seconds(pid) - before, 3)
                    row["writer_cpu_s"] = round(children_cpu_seconds(pid) - before_writer, 3)
                    runs[mode].append(result)
                    rows[mode].append(row)
                    answered[mode] += result.requests
            bodies[body] = {mode: self._cell(f"{ACCESS_LOG}/{body}/{mode}", runs[mode],
                                             rows[mode]) for mode in MODES}
        store = self._check(answered)
        for mode in MODES:
            b.procs.stop(f"campusgate-log-{mode}")
        b.scenarios[ACCESS_LOG] = {"bodies": bodies, "store": store}

    def _cell(self, label: str, runs: list[WrkResult], rows: list[dict[str, Any]]
              ) -> dict[str, Any]:
        best = median_result(runs)
        requests = sum(r.requests for r in runs)
        used = sum(float(row["worker_cpu_s"]) for row in rows)
        cpu = round(used / requests * 1e6, 2) if requests else None
        writer = sum(float(row.get("writer_cpu_s", 0.0)) for row in rows)
        writer_cpu = round(writer / requests * 1e6, 2) if requests else None
        errors = sum(r.errors for r in runs)
        self.bench.say(f"{label}: {best.rps:,.0f} req/s, p50 {best.p50_ms:.3f} ms, "
                       f"p99 {best.p99_ms:.3f} ms, worker CPU {cpu} us/req, "
                       f"log writer CPU {writer_cpu} us/req"
                       + (f", {errors} ERRORS" if errors else ""))
        return {"runs": rows, "median": rows[runs.index(best)], "cpu_us_per_request": cpu,
                "writer_cpu_us_per_request": writer_cpu}

    def _check(self, answered: dict[str, int]) -> dict[str, Any]:
        """Wait for the writer's last flush, then check both stores."""
        b = self.bench
        counts: dict[str, tuple[int, int]] = {}
        for mode in MODES:
            db = b.home(f"campusgate-log-{mode}") / "campusgate.db"
            deadline = time.monotonic() + SETTLE_S
            while True:
                counts[mode] = (_count(db, RECORDS_SQL), _count(db, ROLLUPS_SQL))
                problem = check_store(mode, *counts[mode], answered[mode])
                if problem is None or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            if problem is not None:
                raise StartError(f"{ACCESS_LOG}: {problem}")
        records, rollups = counts["on"]
        b.say(f"{ACCESS_LOG}: {records:,} access records for {answered['on']:,} requests, "
              f"{rollups:,} roll-up rows")
        return {"records": records, "rollups": rollups, "answered": answered["on"]}

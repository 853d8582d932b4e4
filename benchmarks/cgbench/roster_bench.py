"""The ``roster-import`` scenario as run: a big district's OneRoster bundle imported
through the admin API, against bare inserts of the same rows in the same run.

For each database -- SQLite (the instance's own file) and PostgreSQL when one answers
on 127.0.0.1:5432 (a fresh database per measurement, dropped afterwards; else the
backend is skipped with a note) -- a campusgate (one worker, pinned like every proxy
under test) gets the bundle twice on ``POST /identity/roster/tenants/bench/import``:
the first import, then the same bundle again (nothing changes; campusgate still reads,
checks and compares everything).  The clock runs from the first byte of the request
to the final NDJSON event.  Then ``cgbench/roster_baseline.py`` inserts the same rows
into an empty database of the same kind, pinned to the same CPU: the ratio is
campusgate's rows per second over that.  One measurement each (an import cannot be
repeated on the same database and stay a first import).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg  # type: ignore[import-untyped]
import httpx

from cgbench import idp, roster
from cgbench.procs import StartError, free_port

if TYPE_CHECKING:
    from cgbench.bench import Bench

__all__ = ["RosterBench"]

BENCH_DIR = Path(__file__).resolve().parents[1]
PG_ADMIN_DSN = os.environ.get("CAMPUSGATE_BENCH_PG",
                              "postgresql://postgres@127.0.0.1:5432/postgres")
TENANT = "bench"


async def _pg(statement: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


class RosterBench:
    """Runs ``roster-import`` for one :class:`Bench`."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    def run(self) -> dict[str, Any]:
        b = self.bench
        people = b.settings.roster_people
        shape = roster.district_shape(people)
        bundle = b.home("roster") / "district.zip"
        bundle.write_bytes(roster.district_bundle(people))
        b.say(f"roster-import: {shape.people:,} people, {shape.rows:,} rows, "
              f"{bundle.stat().st_size / 1e6:.1f} MB zipped")
        backends: dict[str, Any] = {"sqlite": self.backend(
            "sqlite", bundle, shape, str(b.home("roster-sqlite") / "campusgate.db"),
            str(b.home("roster-sqlite") / "baseline.db"))}
        try:
            asyncio.run(_pg("SELECT 1"))
        except (OSError, asyncpg.PostgresError) as exc:
            backends["postgresql"] = {"skipped": f"no PostgreSQL at {PG_ADMIN_DSN} ({exc})"}
            b.say(f"roster-import/postgresql: skipped ({exc})")
        else:
            names = [f"cgbench_roster_{secrets.token_hex(4)}" for _ in range(2)]
            base = PG_ADMIN_DSN.rsplit("/", 1)[0]
            try:
                for name in names:
                    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
                backends["postgresql"] = self.backend(
                    "postgresql", bundle, shape, f"{base}/{names[0]}", f"{base}/{names[1]}")
            finally:
                for name in names:
                    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return {"people": shape.people, "teachers": shape.teachers,
                "students": shape.students, "schools": shape.schools,
                "classes": shape.classes, "enrollments": shape.enrollments,
                "rows": shape.rows, "bundle_bytes": bundle.stat().st_size,
                "passwords": False, "backends": backends}

    def backend(self, backend: str, bundle: Path, shape: roster.DistrictShape,
                storage: str, baseline_storage: str) -> dict[str, Any]:
        b = self.bench
        name = f"campusgate-roster-{backend}"
        port, admin = free_port(), free_port()
        text = roster.roster_yaml(proxy_port=port, admin_port=admin,
                                  upstream_port=b.upstream_port, storage=storage)
        b.launch_campusgate(name, text, port, admin)
        token = idp.admin_token_from_log(b.procs.log_path(name).read_text(errors="replace"))
        if token is None:
            raise StartError(f"{name}: no admin token in its log (not a first start?)")
        first = self.timed_import(name, admin, token, bundle, shape)
        again = self.timed_import(name, admin, token, bundle, shape)
        b.procs.stop(name)
        base = self.baseline(backend, bundle, baseline_storage, shape)
        cell = {"first": first, "reimport": again, "baseline": base}
        for key in ("first", "reimport"):
            cell[f"ratio_{key}"] = round(base["seconds"] / cell[key]["seconds"], 4)
        b.say(f"roster-import/{backend}: first {first['seconds']:.2f} s "
              f"({first['people_per_s']:,.0f} people/s), re-import {again['seconds']:.2f} s, "
              f"bare inserts {base['seconds']:.2f} s -> {cell['ratio_first']:.3f}x")
        return cell

    def timed_import(self, name: str, admin: int, token: str, bundle: Path,
                     shape: roster.DistrictShape) -> dict[str, Any]:
        """POST the bundle; seconds from the request to the final event."""
        data = bundle.read_bytes()
        url = f"http://127.0.0.1:{admin}/identity/roster/tenants/{TENANT}/import"
        headers = {"Content-Type": "application/zip", "Authorization": f"Bearer {token}"}
        final: dict[str, Any] = {}
        started = time.perf_counter()
        with httpx.Client(timeout=httpx.Timeout(30.0, read=1800.0)) as client, \
                client.stream("POST", url, content=data, headers=headers) as response:
            if response.status_code != 200:
                response.read()
                raise StartError(f"{name}: the import answered {response.status_code}: "
                                 f"{response.text[:500]}")
            for line in response.iter_lines():
                if line.strip():
                    event = json.loads(line)
                    if event.get("event") != "progress":
                        final = event
        seconds = time.perf_counter() - started
        if final.get("event") != "done":
            raise StartError(f"{name}: the import ended with {final}\n"
                             + self.bench.procs.log_tail(name))
        return {**roster.figures(seconds, shape), "result": final["result"]}

    def baseline(self, backend: str, bundle: Path, storage: str,
                 shape: roster.DistrictShape) -> dict[str, Any]:
        s = self.bench.settings
        argv = [sys.executable, "-m", "cgbench.roster_baseline", "--bundle", str(bundle),
                "--storage", storage]
        if s.proxy_cpu is not None:
            argv = ["taskset", "-c", s.proxy_cpu, *argv]
        out = subprocess.run(argv, capture_output=True, text=True, check=False,
                             cwd=BENCH_DIR, timeout=1800)
        if out.returncode != 0:
            raise StartError(f"roster-import/{backend}: the baseline failed: "
                             f"{out.stderr.strip()[-2000:]}")
        done = json.loads(out.stdout)
        if done["rows"] != shape.rows:
            raise StartError(f"roster-import/{backend}: the baseline inserted {done['rows']} "
                             f"rows, the bundle has {shape.rows}")
        return roster.figures(float(done["seconds"]), shape)

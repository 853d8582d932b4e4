"""``make bench``: campusgate vs a tuned nginx reverse proxy vs a direct call.

Starts an nginx origin, an nginx reverse proxy and campusgate on 127.0.0.1 (free
ports, files under ``benchmarks/work/``), drives them with wrk and an open-loop
fixed-rate generator, writes ``benchmarks/results/<UTC>.json`` and ``latest.json``
and refreshes the table in ``benchmarks/README.md``.  Every process it starts is
stopped on exit, error or Ctrl-C.  See ``benchmarks/README.md`` for the method;
``cgbench/bench.py`` does the measuring.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from cgbench import auth, report
from cgbench.accesslog import ACCESS_LOG
from cgbench.bench import AI_SCENARIOS, AUTH_SCENARIOS, BODIES, IDP_SCENARIOS, Bench, Settings
from cgbench.machine import machine_info
from cgbench.procs import Processes, StartError, ensure_tools
from cgbench.roster import DEFAULT_PEOPLE, ROSTER_IMPORT

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SCENARIOS = ("plain", *AUTH_SCENARIOS, *IDP_SCENARIOS, "routes10k", "latency", "memory",
             ACCESS_LOG, ROSTER_IMPORT, *AI_SCENARIOS)


def _parse_args(argv: Sequence[str] | None) -> Settings:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description="campusgate benchmarks (see README.md)")
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"scenarios to run (default: all of {', '.join(SCENARIOS)})")
    parser.add_argument("--bodies", default="hello,json",
                        help="plain scenario bodies: hello (5 B) and/or json (~1 KB)")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per target (median)")
    parser.add_argument("--duration", type=int, default=7, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk warm-up")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections")
    parser.add_argument("--rate", type=float, default=1000.0, help="latency: req/s")
    parser.add_argument("--latency-duration", type=float, default=6.0)
    parser.add_argument("--latency-runs", type=int, default=3)
    parser.add_argument("--browsers", type=int, default=16,
                        help="idp-flows: simulated browsers running code flows at once")
    parser.add_argument("--signin-browsers", type=int, default=4,
                        help="idp-flows: simulated browsers signing in at once")
    parser.add_argument("--roster-people", type=int, default=DEFAULT_PEOPLE,
                        help="roster-import: people in the generated district")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the proxy and the load side to separate CPUs")
    parser.add_argument("--upstream-workers", type=int, default=1)
    parser.add_argument("--report-only", action="store_true",
                        help="only regenerate the README table from results/latest.json")
    parser.add_argument("--keep-workdir", action="store_true",
                        help="keep benchmarks/work/<run> (configs, logs) afterwards")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; "
                     f"choose from {', '.join(SCENARIOS)}")
    pin = not args.no_pin and cores >= 2
    return Settings(
        scenarios=tuple(args.scenarios) or SCENARIOS,
        bodies=tuple(b for b in args.bodies.split(",") if b),
        runs=max(1, args.runs), duration=args.duration, warmup=args.warmup,
        threads=args.threads, connections=args.connections, rate=args.rate,
        latency_duration=args.latency_duration, latency_runs=max(1, args.latency_runs),
        proxy_cpu="0" if pin else None,
        load_cpu=("1" if cores == 2 else f"1-{cores - 1}") if pin else None,
        upstream_workers=args.upstream_workers, keep_workdir=args.keep_workdir,
        report_only=args.report_only, browsers=max(1, args.browsers),
        signin_browsers=max(1, args.signin_browsers),
        roster_people=max(25, args.roster_people),
    )


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    settings = _parse_args(argv)
    for body in settings.bodies:
        if body not in BODIES:
            print(f"unknown body {body!r}; choose from {', '.join(BODIES)}", file=sys.stderr)
            return 2
    if settings.report_only:
        doc = json.loads((BENCH_DIR / "results" / "latest.json").read_text())
        _write_readme(doc)
        return 0
    tools: list[tuple[str, list[str]]] = [("wrk", ["wrk"]),
                                          ("nginx", ["nginx-light", "nginx"]),
                                          ("taskset", ["util-linux"])]
    if any(auth.scenario(n).needs_redis for n in settings.scenarios if n in auth.AUTH_SCENARIOS):
        tools.append(("redis-server", ["redis-server"]))
    installed = ensure_tools(tools)
    if installed:
        print(f"installed: {', '.join(installed)}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = BENCH_DIR / "work" / stamp
    workdir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    started = time.monotonic()
    try:
        with Processes(workdir) as procs:
            bench = Bench(settings, procs, workdir)
            bench.say(f"scenarios: {', '.join(settings.scenarios)}; wrk {settings.wrk_args}; "
                      f"proxy on CPU {settings.proxy_cpu}, load on CPU {settings.load_cpu}")
            bench.run()
    except KeyboardInterrupt:
        print("interrupted; every process stopped", file=sys.stderr)
        return 130
    except StartError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        print(f"logs kept in {workdir}", file=sys.stderr)
        return 1
    doc = {
        "timestamp": stamp,
        "elapsed_s": round(time.monotonic() - started, 1),
        "machine": machine_info(REPO),
        "settings": {**asdict(settings), "wrk_args": settings.wrk_args},
        "scenarios": bench.scenarios,
        "goals": [asdict(g) for g in report.evaluate_goals(bench.scenarios)],
    }
    results = BENCH_DIR / "results"
    results.mkdir(exist_ok=True)
    text = json.dumps(doc, indent=2) + "\n"
    (results / f"{stamp}.json").write_text(text)
    (results / "latest.json").write_text(text)
    print("\n" + _write_readme(doc) + "\n")
    print(f"results: {results / (stamp + '.json')} ({doc['elapsed_s']} s)")
    if not settings.keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _write_readme(doc: dict[str, Any]) -> str:
    """Put the results table of ``doc`` between the README's markers; return the table."""
    readme = BENCH_DIR / "README.md"
    table = report.render_results(doc)
    readme.write_text(report.replace_results(readme.read_text() if readme.exists() else "",
                                             table))
    return table


if __name__ == "__main__":
    sys.exit(main())

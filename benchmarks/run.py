"""``make bench``: campusgate vs a tuned nginx reverse proxy vs a direct call.

Starts an nginx origin, an nginx reverse proxy and campusgate on 127.0.0.1 (free
ports, files under ``benchmarks/work/``), drives them with wrk and an open-loop
fixed-rate generator, writes ``benchmarks/results/<UTC>.json`` and ``latest.json``
and refreshes the table in ``benchmarks/README.md``.  Every process it starts is
stopped on exit, error or Ctrl-C.  See ``benchmarks/README.md`` for the method.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from cgbench import configs, report
from cgbench.machine import machine_info
from cgbench.procs import Processes, StartError, ensure_tools, free_port, rss_kb
from cgbench.wrk import WrkResult, median_result, parse_wrk

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
SCENARIOS = ("plain", "routes10k", "latency", "memory")
BODIES = {"hello": "/", "json": "/json"}


@dataclass
class Settings:
    scenarios: tuple[str, ...]
    bodies: tuple[str, ...]
    runs: int
    duration: int
    warmup: int
    threads: int
    connections: int
    rate: float
    latency_duration: float
    latency_runs: int
    proxy_cpu: str | None
    load_cpu: str | None
    upstream_workers: int
    keep_workdir: bool
    report_only: bool = False

    @property
    def wrk_args(self) -> str:
        return f"-t{self.threads} -c{self.connections} -d{self.duration}s --latency"


@dataclass
class Bench:
    """One run: its settings, processes, the origin and what has been measured."""

    settings: Settings
    procs: Processes
    workdir: Path
    upstream_port: int = 0
    scenarios: dict[str, Any] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)

    # ------------------------------------------------------------ processes

    def start_nginx(self, name: str, conf: str) -> None:
        prefix = self.workdir / name
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "nginx.conf").write_text(conf)
        # nginx pins its own workers (worker_cpu_affinity); no taskset needed.
        self.procs.start(name, ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")])

    def start_upstream(self) -> None:
        self.upstream_port = free_port()
        s = self.settings
        conf = configs.nginx_upstream_conf(
            self.workdir / "upstream", self.upstream_port, s.upstream_workers, _run_as(),
            _affinity(s.load_cpu, s.upstream_workers))
        self.start_nginx("upstream", conf)
        self.procs.wait_http("upstream", self.upstream_port, timeout=10)

    def start_nginx_proxy(self) -> int:
        port = free_port()
        s = self.settings
        conf = configs.nginx_proxy_conf(self.workdir / "nginx-proxy", port, self.upstream_port,
                                        _run_as(), _affinity(s.proxy_cpu, 1))
        self.start_nginx("nginx-proxy", conf)
        self.procs.wait_http("nginx-proxy", port, timeout=10)
        return port

    def start_campusgate(self, name: str, routes: int, services: int = 1) -> tuple[int, int]:
        """Start campusgate with ``routes`` routes; returns (proxy port, worker pid)."""
        port, admin = free_port(), free_port()
        home = self.workdir / name
        home.mkdir(parents=True, exist_ok=True)
        conf = home / "campusgate.yaml"
        conf.write_text(configs.campusgate_yaml(
            proxy_port=port, admin_port=admin, upstream_port=self.upstream_port,
            storage=home / "campusgate.db", routes=routes, services=services))
        env = {**os.environ, "CAMPUSGATE_LOG_LEVEL": "WARNING"}
        proc = self.procs.start(
            name, [str(VENV_BIN / "campusgate"), "serve", "-c", str(conf), "--workers", "1"],
            cpus=self.settings.proxy_cpu, cwd=home, env=env)
        probe = "/" if routes == 1 else configs.route_targets(1)[0].path
        started = time.monotonic()
        self.procs.wait_http(name, port, probe, timeout=300)
        self.procs.wait_http(name, admin, "/healthz", timeout=30)
        self.say(f"{name}: {routes:,} routes, up in {time.monotonic() - started:.1f} s")
        # With --workers 1 the serving worker is the process itself (taskset execs it).
        return port, proc.pid

    # ------------------------------------------------------------ load

    def wrk(self, port: int, path: str, seconds: int, script: Path | None = None) -> WrkResult:
        s = self.settings
        argv = ["wrk", f"-t{s.threads}", f"-c{s.connections}", f"-d{seconds}s", "--latency"]
        if script is not None:
            argv += ["-s", str(script)]
        argv.append(f"http://127.0.0.1:{port}{path}")
        if s.load_cpu is not None:
            argv = ["taskset", "-c", s.load_cpu, *argv]
        out = subprocess.run(argv, capture_output=True, text=True, check=False,
                             timeout=seconds + 60)
        if out.returncode != 0:
            raise StartError(f"wrk failed ({out.returncode}): {out.stderr.strip()}")
        return parse_wrk(out.stdout)

    def throughput(self, label: str, port: int, path: str = "/",
                   script: Path | None = None) -> dict[str, Any]:
        """Warm up, then ``runs`` wrk runs; the raw runs and the median one."""
        s = self.settings
        if s.warmup:
            self.wrk(port, path, s.warmup, script)
        runs = [self.wrk(port, path, s.duration, script) for _ in range(s.runs)]
        best = median_result(runs)
        errors = sum(r.errors for r in runs)
        self.say(f"{label}: {best.rps:,.0f} req/s, p50 {best.p50_ms:.3f} ms, "
                 f"p99 {best.p99_ms:.3f} ms" + (f", {errors} ERRORS" if errors else ""))
        return {"runs": [r.as_dict() for r in runs], "median": best.as_dict()}

    def fixed_rate(self, label: str, port: int) -> dict[str, Any]:
        s = self.settings
        argv = [sys.executable, "-m", "cgbench.loadgen", "--port", str(port),
                "--rate", str(s.rate), "--duration", str(s.latency_duration), "--warmup", "1"]
        if s.load_cpu is not None:
            argv = ["taskset", "-c", s.load_cpu, *argv]
        runs: list[dict[str, Any]] = []
        for _ in range(s.latency_runs):
            out = subprocess.run(argv, capture_output=True, text=True, check=False,
                                 cwd=BENCH_DIR, timeout=s.latency_duration + 60)
            if out.returncode != 0:
                raise StartError(f"load generator failed: {out.stderr.strip()[-2000:]}")
            runs.append(json.loads(out.stdout))
        ordered = sorted(runs, key=lambda r: float(r["service"]["p99_ms"]))
        best = ordered[(len(ordered) - 1) // 2]
        self.say(f"{label} at {s.rate:,.0f}/s: p50 {best['service']['p50_ms']:.3f} ms, "
                 f"p99 {best['service']['p99_ms']:.3f} ms")
        return {"runs": runs, "median": best}

    # ------------------------------------------------------------ scenarios

    def run(self) -> None:
        s = self.settings
        self.start_upstream()
        if {"plain", "latency", "memory"} & set(s.scenarios):
            nginx_port = self.start_nginx_proxy()
            cg_port, cg_pid = self.start_campusgate("campusgate-plain", routes=1)
            targets = {"direct": self.upstream_port, "nginx": nginx_port, "campusgate": cg_port}
            if "plain" in s.scenarios:
                plain: dict[str, Any] = {}
                for body in s.bodies:
                    plain[body] = {name: self.throughput(f"plain/{body}/{name}", port,
                                                         BODIES[body])
                                   for name, port in targets.items()}
                self.scenarios["plain"] = plain
            if "latency" in s.scenarios:
                self.scenarios["latency"] = {name: self.fixed_rate(f"latency/{name}", port)
                                             for name, port in targets.items()}
            if "memory" in s.scenarios:
                if "plain" not in s.scenarios:
                    self.wrk(cg_port, "/", 3)
                self.memory()["rss_kb_1_route"] = rss_kb(cg_pid)
            self.procs.stop("campusgate-plain")
            self.procs.stop("nginx-proxy")
        if "routes10k" in s.scenarios or "memory" in s.scenarios:
            self.routes()

    def memory(self) -> dict[str, Any]:
        mem: dict[str, Any] = self.scenarios.setdefault("memory", {})
        return mem

    def routes(self) -> None:
        s = self.settings
        measure = "routes10k" in s.scenarios
        out: dict[str, Any] = {}
        for count in (10, 10_000) if measure else (10_000,):
            name = f"campusgate-{count}-routes"
            port, pid = self.start_campusgate(name, routes=count, services=10)
            script = self.workdir / f"routes{count}.lua"
            script.write_text(configs.routes_lua(configs.route_targets(count)))
            if measure:
                out[f"routes_{count}"] = self.throughput(f"routes10k/{count}", port,
                                                         script=script)
            else:
                self.wrk(port, "/", 3, script)
            if "memory" in s.scenarios:
                key = "rss_kb_10_routes" if count == 10 else "rss_kb_10000_routes"
                self.memory()[key] = rss_kb(pid)
                self.say(f"{name}: worker RSS {self.memory()[key] / 1024:,.1f} MiB")
            self.procs.stop(name)
        if measure:
            self.scenarios["routes10k"] = out


def _run_as() -> str | None:
    """nginx started as root drops to 'nobody', who cannot read our work dir."""
    return "root" if os.geteuid() == 0 else None


def _affinity(cpus: str | None, workers: int) -> str | None:
    """An nginx worker_cpu_affinity mask list for a single CPU number, else None."""
    if cpus is None or not cpus.isdigit():
        return None
    mask = "1" + "0" * int(cpus)
    return " ".join([mask] * workers)


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
        report_only=args.report_only,
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
    installed = ensure_tools([("wrk", ["wrk"]), ("nginx", ["nginx-light", "nginx"]),
                              ("taskset", ["util-linux"])])
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

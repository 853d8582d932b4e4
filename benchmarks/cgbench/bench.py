"""One benchmark run: its settings, the processes it starts, and the scenarios.

``benchmarks/run.py`` parses the command line and writes the results; this module
starts the origin, the proxies, Redis and campusgate instances and measures them.
See ``benchmarks/README.md`` for the method.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cgbench import ai, auth, configs, idp
from cgbench.accesslog import ACCESS_LOG
from cgbench.accesslog_bench import AccessLogBench
from cgbench.ai_bench import AiBench
from cgbench.idp_bench import IdentityBench
from cgbench.procs import (
    Processes,
    StartError,
    cpu_seconds,
    free_port,
    http_head,
    redis_call,
    rss_kb,
    status_of,
)
from cgbench.roster import DEFAULT_PEOPLE, ROSTER_IMPORT
from cgbench.roster_bench import RosterBench
from cgbench.wrk import WrkResult, median_result, parse_wrk

__all__ = ["AI_SCENARIOS", "AUTH_SCENARIOS", "BODIES", "IDP_SCENARIOS", "Bench", "Settings",
           "affinity"]

BENCH_DIR = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
BODIES = {"hello": "/", "json": "/json"}
AUTH_SCENARIOS = tuple(auth.AUTH_SCENARIOS)
IDP_SCENARIOS = idp.IDP_SCENARIOS
AI_SCENARIOS = ai.AI_SCENARIOS


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
    #: Simulated browsers of ``idp-flows``: running code flows, and signing in (each
    #: sign-in waits for an argon2id hash, so a few keep the worker busy).
    browsers: int = 16
    signin_browsers: int = 4
    #: People in the district ``roster-import`` generates and imports.
    roster_people: int = DEFAULT_PEOPLE

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
            affinity(s.load_cpu, s.upstream_workers))
        self.start_nginx("upstream", conf)
        self.procs.wait_http("upstream", self.upstream_port, timeout=10)

    def start_nginx_proxy(self) -> int:
        port = free_port()
        s = self.settings
        conf = configs.nginx_proxy_conf(self.workdir / "nginx-proxy", port, self.upstream_port,
                                        _run_as(), affinity(s.proxy_cpu, 1))
        self.start_nginx("nginx-proxy", conf)
        self.procs.wait_http("nginx-proxy", port, timeout=10)
        return port

    def bodies(self) -> dict[str, str]:
        """The bodies asked for, and the origin path of each."""
        return {body: BODIES[body] for body in self.settings.bodies}

    def home(self, name: str) -> Path:
        """The directory of one campusgate instance (config, SQLite file, secret key)."""
        home = self.workdir / name
        home.mkdir(parents=True, exist_ok=True)
        return home

    def start_campusgate(self, name: str, routes: int, services: int = 1) -> tuple[int, int]:
        """Start campusgate with ``routes`` routes; returns (proxy port, worker pid)."""
        port, admin = free_port(), free_port()
        text = configs.campusgate_yaml(
            proxy_port=port, admin_port=admin, upstream_port=self.upstream_port,
            storage=self.home(name) / "campusgate.db", routes=routes, services=services)
        probe = "/" if routes == 1 else configs.route_targets(1)[0].path
        started = time.monotonic()
        pid = self.launch_campusgate(name, text, port, admin, probe)
        self.say(f"{name}: {routes:,} routes, up in {time.monotonic() - started:.1f} s")
        return port, pid

    def launch_campusgate(self, name: str, text: str, port: int, admin: int, probe: str = "/",
                          ok: Sequence[int] = (200,)) -> int:
        """Run ``campusgate serve`` on config ``text``; wait until ``probe`` answers an
        ``ok`` status and the admin ``/healthz`` answers; returns the worker pid."""
        home = self.home(name)
        conf = home / "campusgate.yaml"
        conf.write_text(text)
        env = {**os.environ, "CAMPUSGATE_LOG_LEVEL": "WARNING"}
        proc = self.procs.start(
            name, [str(VENV_BIN / "campusgate"), "serve", "-c", str(conf), "--workers", "1"],
            cpus=self.settings.proxy_cpu, cwd=home, env=env)
        self.procs.wait_http(name, port, probe, timeout=300, ok=ok)
        self.procs.wait_http(name, admin, "/healthz", timeout=30)
        # With --workers 1 the serving worker is the process itself (taskset execs it).
        return proc.pid

    def start_redis(self) -> int:
        """A private redis-server on a free port, pinned to the load CPU; returns the port.

        Private rather than the shared 6379: it can be pinned like the origin, nothing
        else's keys or traffic are in it, and it starts empty.  No persistence.
        """
        port = free_port()
        home = self.home("redis")
        self.procs.start("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", str(home)],
                         cpus=self.settings.load_cpu)
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis_call(port, [auth.resp_command("PING")]) == [b"+PONG"]:
                    return port
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise StartError("redis-server did not answer PING within 10 s:\n"
                                 + self.procs.log_tail("redis"))
            time.sleep(0.05)

    # ------------------------------------------------------------ load

    def wrk(self, port: int, path: str, seconds: int, script: Path | None = None,
            headers: Sequence[str] = (), timeout: int | None = None) -> WrkResult:
        """One wrk run; ``timeout`` (s) replaces wrk's 2 s limit on one response."""
        s = self.settings
        argv = ["wrk", f"-t{s.threads}", f"-c{s.connections}", f"-d{seconds}s", "--latency"]
        if timeout is not None:
            argv += ["--timeout", f"{timeout}s"]
        for header in headers:
            argv += ["-H", header]
        if script is not None:
            argv += ["-s", str(script)]
        argv.append(f"http://127.0.0.1:{port}{path}")
        if s.load_cpu is not None:
            argv = ["taskset", "-c", s.load_cpu, *argv]
        out = subprocess.run(argv, capture_output=True, text=True, check=False,
                             timeout=seconds + (timeout or 2) + 60)
        if out.returncode != 0:
            dead = ", ".join(f"{name} exited with status {proc.returncode}"
                             for name, proc in self.procs.children.items()
                             if proc.poll() is not None)
            raise StartError(f"wrk failed ({out.returncode}): {out.stderr.strip()}"
                             + (f" ({dead})" if dead else ""))
        return parse_wrk(out.stdout)

    def throughput(self, label: str, port: int, path: str = "/",
                   script: Path | None = None, headers: Sequence[str] = (),
                   pid: int | None = None, timeout: int | None = None) -> dict[str, Any]:
        """Warm up, then ``runs`` wrk runs; the raw runs and the median one.

        With the ``pid`` of a campusgate worker, each run also records the CPU time the
        worker used (``worker_cpu_s``), and the cell its CPU time per request over all
        runs (``cpu_us_per_request``): a cost that other load on the machine moves far
        less than it moves req/s.
        """
        s = self.settings
        if s.warmup:
            self.wrk(port, path, s.warmup, script, headers, timeout)
        runs: list[WrkResult] = []
        rows: list[dict[str, Any]] = []
        for _ in range(s.runs):
            before = cpu_seconds(pid) if pid is not None else 0.0
            result = self.wrk(port, path, s.duration, script, headers, timeout)
            row: dict[str, Any] = result.as_dict()
            if pid is not None:
                row["worker_cpu_s"] = round(cpu_seconds(pid) - before, 3)
            runs.append(result)
            rows.append(row)
        best = median_result(runs)
        errors = sum(r.errors for r in runs)
        cell: dict[str, Any] = {"runs": rows, "median": rows[runs.index(best)]}
        cpu = ""
        if pid is not None:
            requests = sum(r.requests for r in runs)
            used = sum(float(row["worker_cpu_s"]) for row in rows)
            cell["cpu_us_per_request"] = round(used / requests * 1e6, 2) if requests else None
            cpu = f", worker CPU {cell['cpu_us_per_request']} us/req"
        self.say(f"{label}: {best.rps:,.0f} req/s, p50 {best.p50_ms:.3f} ms, "
                 f"p99 {best.p99_ms:.3f} ms{cpu}" + (f", {errors} ERRORS" if errors else ""))
        return cell

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
                    plain[body] = {
                        name: self.throughput(f"plain/{body}/{name}", port, BODIES[body],
                                              pid=cg_pid if name == "campusgate" else None)
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
        names = [n for n in auth.AUTH_SCENARIOS if n in s.scenarios]
        if names:
            self.run_auth(names)
        idp_names = [n for n in IDP_SCENARIOS if n in s.scenarios]
        if idp_names:
            IdentityBench(self).run(idp_names)
        if "routes10k" in s.scenarios or "memory" in s.scenarios:
            self.routes()
        if ACCESS_LOG in s.scenarios:
            AccessLogBench(self).run()
        if ROSTER_IMPORT in s.scenarios:
            self.scenarios[ROSTER_IMPORT] = RosterBench(self).run()
        ai_names = [n for n in AI_SCENARIOS if n in s.scenarios]
        if ai_names:
            AiBench(self).run(ai_names)

    def plain_reference(self) -> None:
        """campusgate's plain number for every body, which the authentication scenarios
        are divided by: measured here when ``plain`` was not asked for."""
        plain: dict[str, Any] = self.scenarios.setdefault("plain", {})
        missing = [b for b in self.settings.bodies if "campusgate" not in plain.get(b, {})]
        if missing:
            port, pid = self.start_campusgate("campusgate-plain", routes=1)
            for body in missing:
                plain.setdefault(body, {})["campusgate"] = self.throughput(
                    f"plain/{body}/campusgate", port, BODIES[body], pid=pid)
            self.procs.stop("campusgate-plain")

    def run_auth(self, names: list[str]) -> None:
        """The authentication scenarios, and campusgate plain as their reference."""
        self.plain_reference()
        redis_port = None
        if any(auth.scenario(n).needs_redis for n in names):
            redis_port = self.start_redis()
        for name in names:
            self.scenarios[name] = self.auth_scenario(auth.scenario(name), redis_port)
        if redis_port is not None:
            self.procs.stop("redis")

    def auth_scenario(self, sc: auth.AuthScenario, redis_port: int | None) -> dict[str, Any]:
        s = self.settings
        name = f"campusgate-{sc.name}"
        home = self.home(name)
        port, admin = free_port(), free_port()
        public_pem, tokens = None, []
        if sc.jwt:
            private_pem, public_pem = auth.new_rs256_key()
            tokens = auth.rs256_tokens(private_pem, int(time.time()))
        result: dict[str, Any] = {"plugins": sc.summary}
        if sc.needs_redis:
            assert redis_port is not None
            select = auth.resp_command("SELECT", str(auth.REDIS_DB))
            redis_call(redis_port, [select, auth.resp_command("FLUSHDB")])
        text = auth.auth_yaml(sc.name, proxy_port=port, admin_port=admin,
                              upstream_port=self.upstream_port,
                              storage=home / "campusgate.db", redis_port=redis_port,
                              public_key_pem=public_pem)
        started = time.monotonic()
        # Without a credential the route must refuse: the plugins are on.
        pid = self.launch_campusgate(name, text, port, admin, "/", ok=(401,))
        credential = ((f"Authorization: Bearer {tokens[0]}",) if sc.jwt else sc.wrk_headers)
        self.check_admitted(name, port, credential, rate_limited=sc.rate_limit_backend is not None)
        self.say(f"{name}: {sc.summary}, up in {time.monotonic() - started:.1f} s")
        cells: dict[str, Any] = {}
        for body in s.bodies:
            script = None
            if sc.jwt:
                script = home / f"jwt-{body}.lua"
                script.write_text(auth.jwt_lua(tokens, BODIES[body]))
            cells[body] = self.throughput(f"{sc.name}/{body}", port, BODIES[body],
                                          script=script, headers=sc.wrk_headers, pid=pid)
        result["bodies"] = cells
        if sc.needs_redis:
            assert redis_port is not None
            keys = redis_call(redis_port, [auth.resp_command("SELECT", str(auth.REDIS_DB)),
                                           auth.resp_command("DBSIZE")])[1]
            count = int(keys.lstrip(b":")) if keys.startswith(b":") else 0
            if count == 0:
                raise StartError(f"{name}: no rate-limit counters in Redis db {auth.REDIS_DB} "
                                 "after the load: the limit did not use Redis")
            result["redis"] = {"db": auth.REDIS_DB, "keys_after_load": count,
                               "pinned_to": s.load_cpu}
        self.procs.stop(name)
        return result

    def check_admitted(self, name: str, port: int, credential: Sequence[str],
                       rate_limited: bool) -> None:
        """One request with the credential must pass (and carry RateLimit headers)."""
        head = http_head(port, "/", headers=credential)
        if status_of(head) != 200:
            raise StartError(f"{name}: a request with the credential got "
                             f"{(head or b'no answer').decode(errors='replace')[:300]}\n"
                             + self.procs.log_tail(name))
        if rate_limited and b"\r\nratelimit-policy:" not in (head or b"").lower():
            raise StartError(f"{name}: the answer has no RateLimit-Policy header: "
                             "is the rate limit on?")

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


def affinity(cpus: str | None, workers: int) -> str | None:
    """An nginx worker_cpu_affinity mask list for a single CPU number, else None."""
    if cpus is None or not cpus.isdigit():
        return None
    mask = "1" + "0" * int(cpus)
    return " ".join([mask] * workers)

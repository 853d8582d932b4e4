"""From a results document to goals met / not met and the README's markdown table.

A results document is the JSON ``benchmarks/run.py`` writes: ``machine``,
``settings`` and ``scenarios``, where each scenario holds raw runs and the median
run (see ``benchmarks/README.md`` for the layout).  Everything here is pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cgbench.accesslog import accesslog_goals, accesslog_rows
from cgbench.ai_report import ai_goals, ai_rows
from cgbench.auth import AUTH_SCENARIOS, GOALS
from cgbench.idp import (
    IDP_JWT,
    IDP_JWT_GOAL,
    IDP_JWT_SUMMARY,
    IDP_SSO,
    IDP_SSO_GOAL,
    IDP_SSO_SUMMARY,
)
from cgbench.roster import ROSTER_IMPORT

__all__ = [
    "END_MARKER",
    "START_MARKER",
    "Goal",
    "evaluate_goals",
    "render_results",
    "replace_results",
]

START_MARKER = "<!-- results:start -->"
END_MARKER = "<!-- results:end -->"

PLAIN_GOAL = 0.5  # campusgate / nginx throughput, one route
ROUTES_GOAL = 0.9  # 10,000 routes / 10 routes throughput
LATENCY_GOAL_MS = 1.0  # p99 added over a direct call at a fixed 1,000 req/s
MEMORY_GOAL_MB = 100.0  # RSS of the worker holding 10,000 routes, MiB


@dataclass(frozen=True, slots=True)
class Goal:
    """One goal of one scenario, with the measured value."""

    scenario: str
    measure: str
    value: float
    unit: str
    target: str
    met: bool
    detail: str

    def formatted_value(self) -> str:
        if self.unit == "x":
            return f"{self.value:.3f}x"
        return f"{self.value:,.2f} {self.unit}"


def _rps(cell: dict[str, Any]) -> float:
    return float(cell["median"]["rps"])


def evaluate_goals(scenarios: dict[str, Any]) -> list[Goal]:
    """The goals of the scenarios present in ``scenarios``, in a fixed order."""
    goals: list[Goal] = []
    plain = scenarios.get("plain")
    if plain:
        for body, cells in plain.items():
            if "campusgate" in cells and "nginx" in cells:
                ratio = _rps(cells["campusgate"]) / _rps(cells["nginx"])
                goals.append(Goal(
                    f"plain ({body})", "throughput campusgate / nginx", ratio, "x",
                    f">= {PLAIN_GOAL}x", ratio >= PLAIN_GOAL,
                    f"{_rps(cells['campusgate']):,.0f} vs {_rps(cells['nginx']):,.0f} req/s",
                ))
    goals += _auth_goals(scenarios)
    routes = scenarios.get("routes10k")
    if routes and "routes_10" in routes and "routes_10000" in routes:
        many, few = _rps(routes["routes_10000"]), _rps(routes["routes_10"])
        ratio = many / few
        goals.append(Goal(
            "routes10k", "throughput 10,000 routes / 10 routes", ratio, "x",
            f">= {ROUTES_GOAL}x", ratio >= ROUTES_GOAL, f"{many:,.0f} vs {few:,.0f} req/s",
        ))
    latency = scenarios.get("latency")
    if latency and "campusgate" in latency and "direct" in latency:
        cg = float(latency["campusgate"]["median"]["service"]["p99_ms"])
        direct = float(latency["direct"]["median"]["service"]["p99_ms"])
        added = cg - direct
        rate = latency["campusgate"]["median"]["rate_target"]
        goals.append(Goal(
            "latency", f"p99 added over direct at {rate:,.0f} req/s", added, "ms",
            f"< {LATENCY_GOAL_MS} ms", added < LATENCY_GOAL_MS,
            f"p99 {cg:.3f} ms vs {direct:.3f} ms direct",
        ))
    memory = scenarios.get("memory")
    if memory and "rss_kb_10000_routes" in memory:
        mib = memory["rss_kb_10000_routes"] / 1024.0
        base = memory.get("rss_kb_1_route")
        detail = f"1 route: {base / 1024.0:,.1f} MiB" if base else ""
        goals.append(Goal(
            "memory", "worker RSS with 10,000 routes", mib, "MiB",
            f"< {MEMORY_GOAL_MB:.0f} MiB", mib < MEMORY_GOAL_MB, detail,
        ))
    goals += [Goal(*fields) for fields in accesslog_goals(scenarios)]
    goals += [Goal(*fields) for fields in ai_goals(scenarios)]
    return goals


def _plain_rps(scenarios: dict[str, Any], body: str) -> float | None:
    """campusgate's plain throughput for ``body`` in this run, the auth reference."""
    cell = scenarios.get("plain", {}).get(body, {}).get("campusgate")
    return _rps(cell) if cell else None


def _cpu_ratio(scenarios: dict[str, Any], body: str, cell: dict[str, Any]) -> float | None:
    """campusgate plain's worker CPU per request over ``cell``'s: the throughput ratio a
    core given wholly to the worker would show.  None when either was not measured."""
    plain = scenarios.get("plain", {}).get(body, {}).get("campusgate", {})
    mine, base = cell.get("cpu_us_per_request"), plain.get("cpu_us_per_request")
    return float(base) / float(mine) if mine and base else None


#: The scenarios compared with campusgate plain: the authentication plugins, and the
#: ``jwt`` plugin on tokens campusgate issued itself, and the ``sso`` plugin's sessions.
RATIO_GOALS = {**GOALS, IDP_JWT: IDP_JWT_GOAL, IDP_SSO: IDP_SSO_GOAL}
_SUMMARIES = {**{n: s.summary for n, s in AUTH_SCENARIOS.items()}, IDP_JWT: IDP_JWT_SUMMARY,
              IDP_SSO: IDP_SSO_SUMMARY}


def _auth_goals(scenarios: dict[str, Any]) -> list[Goal]:
    """Each auth scenario's throughput over campusgate plain, per body measured."""
    goals: list[Goal] = []
    for name, goal in RATIO_GOALS.items():
        for body, cell in scenarios.get(name, {}).get("bodies", {}).items():
            plain = _plain_rps(scenarios, body)
            if not plain:
                continue
            ratio = _rps(cell) / plain
            detail = f"{_rps(cell):,.0f} vs {plain:,.0f} req/s"
            cpu = _cpu_ratio(scenarios, body, cell)
            if cpu is not None:
                detail += f"; by worker CPU per request {cpu:.3f}x"
            goals.append(Goal(f"{name} ({body})", "throughput / campusgate plain", ratio, "x",
                              f">= {goal}x", ratio >= goal, detail))
    return goals


def _auth_rows(scenarios: dict[str, Any]) -> list[str]:
    names = [n for n in RATIO_GOALS if n in scenarios]
    if not names:
        return []
    lines = ["", "**auth** (campusgate, the plain route with plugins; ratio = req/s over "
                 "campusgate plain, same run, same body; CPU = the worker's CPU time per "
                 "request over all runs, and plain's over it)", "",
             "| scenario | plugins | body | req/s (median) | ratio | p50 ms | p99 ms "
             "| CPU us/req | CPU ratio | errors (all runs) | req/s of each run |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    bodies = list(dict.fromkeys(b for n in names for b in scenarios[n].get("bodies", {})))

    def row(label: str, plugins: str, body: str, cell: dict[str, Any]) -> str:
        m = cell["median"]
        plain = _plain_rps(scenarios, body)
        ratio = f"{m['rps'] / plain:.3f}x" if plain else "-"
        runs = ", ".join(f"{r['rps']:,.0f}" for r in cell["runs"])
        errors = sum(int(r["non_2xx"]) + int(r["socket_errors"]) for r in cell["runs"])
        cpu = cell.get("cpu_us_per_request")
        cpu_ratio = _cpu_ratio(scenarios, body, cell)
        return (f"| {label} | {plugins} | {body} | {m['rps']:,.0f} | {ratio} "
                f"| {_fmt_ms(m['p50_ms'])} | {_fmt_ms(m['p99_ms'])} "
                f"| {f'{cpu:,.1f}' if cpu else '-'} "
                f"| {f'{cpu_ratio:.3f}x' if cpu_ratio else '-'} | {errors} | {runs} |")

    for body in bodies:
        plain_cell = scenarios.get("plain", {}).get(body, {}).get("campusgate")
        if plain_cell:
            lines.append(row("plain", "none", body, plain_cell))
        for name in names:
            cell = scenarios[name].get("bodies", {}).get(body)
            if cell:
                lines.append(row(name, _SUMMARIES[name], body, cell))
    return lines


def _idp_rows(scenarios: dict[str, Any]) -> list[str]:
    """The identity provider's own figures: tokens, sign-ins and code flows per second."""
    rows: list[str] = []
    tokens = scenarios.get("idp-tokens", {})
    for fmt, cell in tokens.get("formats", {}).items():
        m = cell["median"]
        errors = sum(int(r["non_2xx"]) + int(r["socket_errors"]) for r in cell["runs"])
        cpu = cell.get("cpu_us_per_request")
        kind = "JWT (RFC 9068, RS256)" if fmt == "jwt" else fmt
        each = ", ".join(f"{r['rps']:,.0f}" for r in cell["runs"])
        rows.append(f"| idp-tokens | client_credentials tokens, {kind} access token "
                    f"| {m['rps']:,.0f} | {_fmt_ms(m['p50_ms'])} | {_fmt_ms(m['p99_ms'])} "
                    f"| {f'{cpu:,.1f}' if cpu else '-'} | {errors} "
                    f"| {each} | wrk |")
    flows = scenarios.get("idp-flows", {})
    labels = {"signin": "sign-ins (login form POST, argon2id)",
              "flows": "authorization-code + PKCE flows on a session"}
    for mode, label in labels.items():
        cell = flows.get(mode)
        if not cell:
            continue
        m, lat = cell["median"], cell["median"].get("latency", {})
        errors = sum(int(r["errors"]) for r in cell["runs"])
        cpu = m.get("cpu_us_per_op")
        note = f"{m['browsers']} browsers; driver CPU busy {m.get('driver_busy', '-')}"
        each = ", ".join(f"{r['rate']:,.1f}" for r in cell["runs"])
        rows.append(f"| idp-flows | {label} | {m['rate']:,.1f} "
                    f"| {_fmt_ms(lat.get('p50_ms', 0.0))} | {_fmt_ms(lat.get('p99_ms', 0.0))} "
                    f"| {f'{cpu:,.1f}' if cpu else '-'} | {errors} "
                    f"| {each} | {note} |")
    if not rows:
        return []
    return ["", "**identity provider** (campusgate, one worker; per second = completed "
                "operations, 200s only; CPU = the worker's CPU time per operation)", "",
            "| scenario | operation | per second (median) | p50 ms | p99 ms | CPU us/op "
            "| errors (all runs) | per second of each run | load |",
            "|---|---|---|---|---|---|---|---|---|", *rows]


def _roster_rows(scenarios: dict[str, Any]) -> list[str]:
    """``roster-import``: campusgate's import against bare inserts of the same rows."""
    run = scenarios.get(ROSTER_IMPORT)
    if not run:
        return []
    lines = ["", f"**roster-import** (a OneRoster 1.1 district of {run['people']:,} people: "
                 f"{run['students']:,} students, {run['teachers']:,} teachers, "
                 f"{run['schools']:,} schools, {run['classes']:,} classes, "
                 f"{run['enrollments']:,} enrollments; {run['rows']:,} rows, "
                 f"{run['bundle_bytes'] / 1e6:.1f} MB zipped, no passwords; campusgate: "
                 "admin API POST to the final event, one worker; bare inserts: SQLAlchemy "
                 "Core executemany in one transaction, same driver; ratio = campusgate "
                 "rows/s over bare inserts' rows/s)", "",
             "| database | what | seconds | people/s | rows/s | ratio |",
             "|---|---|---|---|---|---|"]
    labels = (("first", "campusgate, first import"),
              ("reimport", "campusgate, unchanged re-import"),
              ("baseline", "bare inserts (baseline)"))
    for backend, cell in run.get("backends", {}).items():
        if "skipped" in cell:
            lines.append(f"| {backend} | skipped: {cell['skipped']} | - | - | - | - |")
            continue
        for key, label in labels:
            m = cell[key]
            ratio = cell.get(f"ratio_{key}")
            lines.append(f"| {backend} | {label} | {m['seconds']:,.2f} "
                         f"| {m['people_per_s']:,.0f} | {m['rows_per_s']:,.0f} "
                         f"| {f'{ratio:.3f}x' if ratio is not None else '-'} |")
    return lines


def _fmt_ms(value: float) -> str:
    return f"{value:.3f}"


def _throughput_rows(label: str, cell: dict[str, Any]) -> str:
    m = cell["median"]
    runs = ", ".join(f"{r['rps']:,.0f}" for r in cell["runs"])
    errors = sum(int(r["non_2xx"]) + int(r["socket_errors"]) for r in cell["runs"])
    return (f"| {label} | {m['rps']:,.0f} | {_fmt_ms(m['p50_ms'])} | {_fmt_ms(m['p99_ms'])} "
            f"| {errors} | {runs} |")


def render_results(doc: dict[str, Any]) -> str:
    """Markdown for the README: machine line, goals, then each scenario's numbers."""
    machine = doc.get("machine", {})
    settings = doc.get("settings", {})
    scenarios = doc.get("scenarios", {})
    lines = [
        f"Run {doc.get('timestamp', '?')} on {machine.get('nproc', '?')} cores "
        f"({machine.get('cpu_model', '?')}), commit `{str(machine.get('git_commit', '?'))[:12]}`"
        f"{' (uncommitted changes)' if machine.get('git_dirty') else ''}; "
        f"campusgate {machine.get('campusgate', '?')}, {machine.get('nginx', '?')}, "
        f"{machine.get('wrk', '?')}, Python {machine.get('python', '?')}. "
        f"wrk `{settings.get('wrk_args', '?')}`, median of {settings.get('runs', '?')} runs.",
        "",
        "| scenario | measure | result | goal | met | detail |",
        "|---|---|---|---|---|---|",
    ]
    for goal in evaluate_goals(scenarios):
        lines.append(f"| {goal.scenario} | {goal.measure} | {goal.formatted_value()} "
                     f"| {goal.target} | {'yes' if goal.met else '**no**'} | {goal.detail} |")
    header = ["| target | req/s (median) | p50 ms | p99 ms | errors (all runs) "
              "| req/s of each run |",
              "|---|---|---|---|---|---|"]
    for body, cells in scenarios.get("plain", {}).items():
        lines += ["", f"**plain, `{body}` body** (one route)", "", *header]
        lines += [_throughput_rows(name, cell) for name, cell in cells.items()]
    lines += _auth_rows(scenarios)
    lines += _idp_rows(scenarios)
    routes = scenarios.get("routes10k")
    if routes:
        lines += ["", "**routes10k** (campusgate; requests cycle over every route)", "", *header]
        lines += [_throughput_rows(name.replace("_", " "), cell) for name, cell in routes.items()]
    latency = scenarios.get("latency")
    if latency:
        lines += ["", "**latency** (open loop, fixed rate; service time = request written -> "
                      "response read)", "",
                  "| target | rate achieved | p50 ms | p99 ms | p99.9 ms | max ms | errors |",
                  "|---|---|---|---|---|---|---|"]
        for name, cell in latency.items():
            m = cell["median"]
            s = m["service"]
            lines.append(f"| {name} | {m['rate_achieved']:,.0f}/s | {_fmt_ms(s['p50_ms'])} "
                         f"| {_fmt_ms(s['p99_ms'])} | {_fmt_ms(s['p99_9_ms'])} "
                         f"| {_fmt_ms(s['max_ms'])} | {m['non_2xx'] + m['socket_errors']} |")
    lines += accesslog_rows(scenarios)
    lines += _roster_rows(scenarios)
    lines += ai_rows(scenarios)
    memory = scenarios.get("memory")
    if memory:
        lines += ["", "**memory** (VmRSS of the campusgate worker after load)", "",
                  "| routes | RSS MiB |", "|---|---|"]
        for key, label in (("rss_kb_1_route", "1"), ("rss_kb_10_routes", "10"),
                           ("rss_kb_10000_routes", "10,000")):
            if key in memory:
                lines.append(f"| {label} | {memory[key] / 1024.0:,.1f} |")
    return "\n".join(lines)


def replace_results(readme: str, table: str) -> str:
    """``readme`` with the text between the results markers replaced by ``table``.

    The markers are appended at the end when the README does not have them yet.
    """
    block = f"{START_MARKER}\n{table}\n{END_MARKER}"
    pattern = re.compile(re.escape(START_MARKER) + r".*?" + re.escape(END_MARKER), re.S)
    if pattern.search(readme):
        return pattern.sub(lambda _: block, readme, count=1)
    return readme.rstrip("\n") + "\n\n" + block + "\n"

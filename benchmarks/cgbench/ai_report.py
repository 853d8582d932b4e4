"""The AI gateway scenarios in the results: their goals and their README tables.

Pure, like ``cgbench/report.py``, which calls it; goals are given back as the fields
of ``report.Goal`` (scenario, measure, value, unit, target, met, detail) so that this
module does not import the one that imports it.
"""

from __future__ import annotations

from typing import Any

from cgbench.ai import GOALS, MODELS, TTFB_GOAL_MS

__all__ = ["GoalFields", "ai_goals", "ai_rows"]

GoalFields = tuple[str, str, float, str, str, bool, str]


def _rps(cell: dict[str, Any]) -> float:
    return float(cell["median"]["rps"])


def _ttfb_added(ttfb: dict[str, Any]) -> tuple[float, float, float] | None:
    """(added, campusgate, direct): median time to first byte, ms."""
    if "campusgate" not in ttfb or "direct" not in ttfb:
        return None
    cg = float(ttfb["campusgate"]["median"]["first_byte"]["p50_ms"])
    direct = float(ttfb["direct"]["median"]["first_byte"]["p50_ms"])
    return cg - direct, cg, direct


def ai_goals(scenarios: dict[str, Any]) -> list[GoalFields]:
    goals: list[GoalFields] = []
    plain = scenarios.get("ai-plain")
    for name, goal in GOALS.items():
        found = scenarios.get(name)
        if not found or not plain:
            continue
        mine = _rps(found["cell"])
        ratio = mine / _rps(plain)
        goals.append((name, "throughput / campusgate plain route (same fake)", ratio, "x",
                      f">= {goal}x", ratio >= goal,
                      f"{mine:,.0f} vs {_rps(plain):,.0f} req/s"))
    added = _ttfb_added(scenarios.get("ai-stream-ttfb", {}))
    if added is not None:
        rate = scenarios["ai-stream-ttfb"].get("rate", 0)
        goals.append(("ai-stream-ttfb", f"median first byte added at {rate:,.0f} streams/s",
                      added[0], "ms", f"< {TTFB_GOAL_MS} ms", added[0] < TTFB_GOAL_MS,
                      f"p50 {added[1]:.3f} ms vs {added[2]:.3f} ms direct"))
    return goals


def ai_rows(scenarios: dict[str, Any]) -> list[str]:
    """The AI tables: chat completions per second, then the streams' timings."""
    lines: list[str] = []
    plain = scenarios.get("ai-plain")
    names = [n for n in GOALS if n in scenarios]
    if plain or names:
        lines += ["", "**AI gateway** (one worker; OpenAI chat completion POSTs to a local "
                      "fake provider)", "",
                  "| target | req/s (median) | p50 ms | p99 ms | worker CPU us/req "
                  "| errors (all runs) |", "|---|---|---|---|---|---|"]
        cells = ([("plain route /plain (no key, no translation)", plain)] if plain else [])
        cells += [(f"{n}: model `{MODELS[n]}`, consumer key", scenarios[n]["cell"])
                  for n in names]
        for label, cell in cells:
            m = cell["median"]
            errors = sum(int(r["non_2xx"]) + int(r["socket_errors"]) for r in cell["runs"])
            lines.append(f"| {label} | {m['rps']:,.0f} | {m['p50_ms']:.3f} | "
                         f"{m['p99_ms']:.3f} | {cell.get('cpu_us_per_request', '')} "
                         f"| {errors} |")
    ttfb = scenarios.get("ai-stream-ttfb")
    if ttfb:
        lines += ["", f"**ai-stream-ttfb** (streamed completions, open loop at "
                      f"{ttfb.get('rate', 0):,.0f}/s; times from the request written)", "",
                  "| target | first byte p50 ms | p99 ms | first event p50 ms | p99 ms "
                  "| whole stream p50 ms | errors |", "|---|---|---|---|---|---|---|"]
        for target in ("direct", "campusgate"):
            if target not in ttfb:
                continue
            m = ttfb[target]["median"]
            fb, fe, st = m["first_byte"], m["first_event"], m["stream"]
            lines.append(f"| {target} | {fb['p50_ms']:.3f} | {fb['p99_ms']:.3f} "
                         f"| {fe['p50_ms']:.3f} | {fe['p99_ms']:.3f} | {st['p50_ms']:.3f} "
                         f"| {m['non_2xx'] + m['socket']} |")
    return lines

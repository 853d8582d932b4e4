"""The ``access-log`` benchmark's pure parts (``benchmarks/cgbench/accesslog.py``):
its two configs, the store check after the load, its goal and table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from campusgate.config.loader import load_config_text
from cgbench import accesslog, ai, configs, report


def _cell(rps: float, cpu: float, writer: float | None = None) -> dict[str, Any]:
    run = {"rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "non_2xx": 0, "socket_errors": 0}
    return {"runs": [run], "median": run, "cpu_us_per_request": cpu,
            "writer_cpu_us_per_request": writer}


def test_the_logging_instance_has_the_defaults_and_every_reference_has_none(
        tmp_path: Path) -> None:
    common: dict[str, Any] = {"proxy_port": 1, "admin_port": 2, "upstream_port": 3,
                              "storage": tmp_path / "cg.db"}
    on = load_config_text(accesslog.accesslog_yaml("on", **common))
    off = load_config_text(accesslog.accesslog_yaml("off", **common))
    assert on.observe.access_log.enabled and [s.type for s in on.observe.sinks] == ["store"]
    assert not off.observe.access_log.enabled
    assert on.services == off.services  # the same route, only logging differs
    # plain, auth, idp, routes10k, latency, memory and the AI scenarios: logging off
    assert not load_config_text(configs.campusgate_yaml(**common)).observe.access_log.enabled
    text = ai.ai_yaml(proxy_port=1, admin_port=2, fake_port=3, storage=tmp_path / "ai.db")
    assert not load_config_text(text).observe.access_log.enabled


def test_the_store_must_hold_every_answered_request() -> None:
    assert accesslog.check_store("on", 1005, 12, 1000) is None
    assert "dropped or lost" in (accesslog.check_store("on", 999, 12, 1000) or "")
    assert "roll-up" in (accesslog.check_store("on", 1000, 0, 1000) or "")
    assert accesslog.check_store("off", 0, 0, 1000) is None
    assert "logging off" in (accesslog.check_store("off", 3, 0, 1000) or "")


def test_goal_and_table() -> None:
    scenarios = {accesslog.ACCESS_LOG: {
        "bodies": {"hello": {"off": _cell(30_000, 33.0, 0.0),
                             "on": _cell(27_300, 34.3, 2.0)},
                   "json": {"off": _cell(30_000, 33.0), "on": _cell(24_000, 41.0)}},
        "store": {"records": 100_000, "rollups": 40, "answered": 99_000}}}
    goals = {g.scenario: g for g in report.evaluate_goals(scenarios)}
    hello, json_ = goals["access-log (hello)"], goals["access-log (json)"]
    assert hello.met and round(hello.value, 2) == 0.91
    assert not json_.met and round(json_.value, 2) == 0.8
    # the log writer's CPU counts with the worker's: 33.0 / (34.3 + 2.0)
    assert "(worker and log writer) 0.909x (36.3, of which the writer 2.0" in hello.detail
    assert "(worker and log writer) 0.805x (41.0, of which the writer 0.0" in json_.detail
    table = report.render_results({"scenarios": scenarios})
    assert "| on | hello | 27,300 | 0.910x | 1.000 | 2.000 | 36.3 | 2.0 | 0.909x |" in table
    assert "| on | json | 24,000 | 0.800x | 1.000 | 2.000 | 41.0 | - | 0.805x |" in table
    assert "100,000 access records for 99,000 requests" in table

"""The AI benchmark scenarios' parts: the generated config and wrk script, the goals
and tables, and the streaming load generator against the fake provider run as the
benchmarks run it (a process with ``--port``)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import uvloop

from campusgate.config.loader import load_config_text
from cgbench import ai, report
from cgbench.ai_report import ai_goals
from cgbench.procs import free_port, wait_http
from cgbench.ttfb import run_streams


def _cell(rps: float) -> dict[str, Any]:
    run = {"rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "non_2xx": 0, "socket_errors": 0}
    return {"runs": [run], "median": run, "cpu_us_per_request": 100.0}


def _ttfb(p50: float) -> dict[str, Any]:
    times = {"p50_ms": p50, "p99_ms": p50 * 2}
    run = {"first_byte": times, "first_event": times, "stream": times, "non_2xx": 0,
           "socket": 0}
    return {"runs": [run], "median": run}


def test_the_ai_config_loads_with_both_providers_and_the_plain_route(tmp_path: Path) -> None:
    config = load_config_text(ai.ai_yaml(proxy_port=1, admin_port=2, fake_port=3,
                                         storage=tmp_path / "cg.db"))
    assert config.ai is not None
    assert {p.type for p in config.ai.providers} == {"openai", "anthropic"}
    assert {m.name for m in config.ai.models} == {ai.MODELS["ai-openai"],
                                                  ai.MODELS["ai-anthropic"]}
    assert [p.name for p in config.ai.plugins] == ["key-auth"]
    assert [r.paths for s in config.services for r in s.routes] == [[ai.PLAIN_PREFIX]]
    assert config.consumers[0].credentials[0].key == ai.API_KEY  # type: ignore[union-attr]


def test_post_lua_sends_the_body_and_key_once_formatted() -> None:
    body = ai.chat_body("bench-openai")
    script = ai.post_lua(body, ai.API_KEY)
    assert 'wrk.method = "POST"' in script
    assert f'wrk.headers["Authorization"] = "Bearer {ai.API_KEY}"' in script
    assert '\\"model\\":\\"bench-openai\\"' in script
    assert "Authorization" not in ai.post_lua(body, None)
    assert '"stream":true' in ai.chat_body("m", stream=True)


def test_ai_goals_and_tables() -> None:
    scenarios: dict[str, Any] = {
        "ai-plain": _cell(20000),
        "ai-openai": {"model": "bench-openai", "cell": _cell(11000)},
        "ai-anthropic": {"model": "bench-anthropic", "cell": _cell(7000)},
        "ai-stream-ttfb": {"rate": 200, "direct": _ttfb(0.2), "campusgate": _ttfb(1.5)},
    }
    goals = {g.scenario: g for g in report.evaluate_goals(scenarios)}
    assert goals["ai-openai"].value == pytest.approx(0.55) and goals["ai-openai"].met
    assert goals["ai-anthropic"].value == pytest.approx(0.35)
    assert not goals["ai-anthropic"].met
    assert goals["ai-stream-ttfb"].value == pytest.approx(1.3)
    assert not goals["ai-stream-ttfb"].met
    assert ai_goals({"ai-openai": scenarios["ai-openai"]}) == []
    table = report.render_results({"scenarios": scenarios})
    assert "| ai-openai | throughput / campusgate plain route (same fake) | 0.550x |" in table
    assert "| campusgate | 1.500 | 3.000 |" in table


def test_ttfb_of_streams_from_the_fake_provider_process() -> None:
    port = free_port()
    proc = subprocess.Popen(ai.fake_argv(port), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert wait_http(port, "/v1/models", timeout=10)
        result = uvloop.run(run_streams(
            port, "/v1/chat/completions", ai.chat_body("m", stream=True).encode(), {},
            rate=100, duration=0.3, connections=4, warmup=0.1))
    finally:
        proc.terminate()
        proc.wait(5)
    assert result["non_2xx"] == 0 and result["socket"] == 0
    assert int(result["requests"]) >= 20  # type: ignore[call-overload]
    first: dict[str, float] = result["first_byte"]  # type: ignore[assignment]
    whole: dict[str, float] = result["stream"]  # type: ignore[assignment]
    assert 0 < first["p50_ms"] <= whole["p50_ms"]

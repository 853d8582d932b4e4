"""The benchmark harness's pure parts: wrk parsing, generated configs, the results table.

No load is generated here; ``make bench`` does that.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from campusgate.config.loader import load_config_text
from cgbench import configs, report
from cgbench.loadgen import percentile, summarize
from cgbench.wrk import WrkError, WrkResult, median_result, parse_duration, parse_wrk

WRK_OK = """\
Running 10s test @ http://127.0.0.1:18999/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   101.70us  146.01us   4.50ms   98.59%
    Req/Sec    79.73k     6.20k   96.92k    80.95%
  Latency Distribution
     50%   92.00us
     75%  101.00us
     90%  108.00us
     99%    1.25ms
  166408 requests in 2.10s, 24.12MB read
Requests/sec:  79243.41
Transfer/sec:     11.49MB
"""

WRK_ERRORS = """\
Running 1s test @ http://127.0.0.1:18999/x
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    88.28us   18.44us    1.02s    81.73%
    Req/Sec    82.04k     0.96k   83.36k    63.64%
  Latency Distribution
     50%   90.00us
     75%   99.00us
     90%  105.00us
     99%  129.00us
  89749 requests in 1.10s, 13.35MB read
  Socket errors: connect 0, read 3, write 1, timeout 7
  Non-2xx or 3xx responses: 89749
Requests/sec:  81582.36
Transfer/sec:     12.14MB
"""


def test_parse_wrk_reads_throughput_and_latency_distribution() -> None:
    result = parse_wrk(WRK_OK)
    assert result.rps == pytest.approx(79243.41)
    assert result.requests == 166408
    assert result.duration_s == pytest.approx(2.10)
    assert (result.p50_ms, result.p75_ms, result.p90_ms) == (0.092, 0.101, 0.108)
    assert result.p99_ms == pytest.approx(1.25)
    assert result.max_ms == pytest.approx(4.5)
    assert result.errors == 0


def test_parse_wrk_counts_non_2xx_and_socket_errors() -> None:
    result = parse_wrk(WRK_ERRORS)
    assert result.non_2xx == 89749
    assert result.socket_errors == 11
    assert result.max_ms == pytest.approx(1020.0)


def test_parse_wrk_needs_the_latency_distribution() -> None:
    no_latency = "\n".join(line for line in WRK_OK.splitlines() if "%" not in line[:8])
    with pytest.raises(WrkError, match="--latency"):
        parse_wrk(no_latency)
    with pytest.raises(WrkError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


@pytest.mark.parametrize(("text", "seconds"), [
    ("101.70us", 101.70e-6), ("2.5ms", 0.0025), ("1.02s", 1.02), ("2m", 120.0),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def _run(rps: float) -> WrkResult:
    return WrkResult(requests=1, duration_s=1.0, rps=rps, p50_ms=1.0, p75_ms=1.0,
                     p90_ms=1.0, p99_ms=rps / 1000, max_ms=1.0)


def test_median_result_is_the_middle_run_by_throughput() -> None:
    assert median_result([_run(300), _run(100), _run(200)]).rps == 200
    assert median_result([_run(400), _run(100)]).rps == 100
    with pytest.raises(ValueError):
        median_result([])


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert summarize([0.001, 0.002, 0.003])["max_ms"] == 3.0


def test_generated_campusgate_configs_load_and_match_the_requests(tmp_path: Path) -> None:
    text = configs.campusgate_yaml(proxy_port=18080, admin_port=18081, upstream_port=18082,
                                   storage=tmp_path / "cg.db", routes=100, services=10)
    config = load_config_text(text)
    routes = [r for s in config.services for r in s.routes]
    assert len(routes) == 100 and len(config.services) == 10
    assert all(s.url == "http://127.0.0.1:18082" for s in config.services)
    assert config.listeners.proxy.address == "127.0.0.1:18080"
    # one request per route, each aimed at a distinct route, some by Host
    targets = configs.route_targets(100)
    assert len({(t.path, t.host) for t in targets}) == 100
    assert any(t.host for t in targets) and any("/users/" in t.path for t in targets)
    plain = load_config_text(configs.campusgate_yaml(
        proxy_port=1, admin_port=2, upstream_port=3, storage=tmp_path / "p.db"))
    assert [r.paths for s in plain.services for r in s.routes] == [["/"]]


def test_routes_lua_lists_every_target() -> None:
    targets = [configs.RouteTarget("/svc1/items/1"), configs.RouteTarget("/api", "h.test")]
    script = configs.routes_lua(targets)
    assert '{"/svc1/items/1", nil}' in script
    assert '{"/api", "h.test"}' in script
    assert "function request()" in script


def test_nginx_configs_listen_only_on_localhost(tmp_path: Path) -> None:
    up = configs.nginx_upstream_conf(tmp_path, 18001, 1, cpus="10")
    proxy = configs.nginx_proxy_conf(tmp_path, 18002, 18001)
    for conf in (up, proxy):
        assert re.findall(r"listen (\S+)", conf) in (["127.0.0.1:18001"], ["127.0.0.1:18002"])
    assert "keepalive 64;" in proxy and 'proxy_set_header Connection "";' in proxy
    assert "worker_cpu_affinity 10;" in up
    assert configs.JSON_BODY in up and "$" not in configs.JSON_BODY
    assert 800 <= len(configs.JSON_BODY) <= 1200


def _cell(rps: float, p99: float = 1.0) -> dict[str, Any]:
    run = {"rps": rps, "p50_ms": 0.5, "p99_ms": p99, "non_2xx": 0, "socket_errors": 0}
    return {"runs": [run], "median": run}


def _latency(p99: float) -> dict[str, Any]:
    run = {"rate_target": 1000.0, "rate_achieved": 1000.0, "non_2xx": 0, "socket_errors": 0,
           "service": {"p50_ms": 0.1, "p99_ms": p99, "p99_9_ms": p99, "max_ms": p99}}
    return {"runs": [run], "median": run}


SCENARIOS: dict[str, Any] = {
    "plain": {"hello": {"direct": _cell(90000), "nginx": _cell(50000),
                        "campusgate": _cell(20000)}},
    "routes10k": {"routes_10": _cell(20000), "routes_10000": _cell(19000)},
    "latency": {"direct": _latency(0.2), "campusgate": _latency(0.9)},
    "memory": {"rss_kb_1_route": 40 * 1024, "rss_kb_10000_routes": 150 * 1024},
}


def test_goals_compute_ratios_and_verdicts() -> None:
    goals = {g.scenario: g for g in report.evaluate_goals(SCENARIOS)}
    assert goals["plain (hello)"].value == pytest.approx(0.4)
    assert not goals["plain (hello)"].met
    assert goals["routes10k"].value == pytest.approx(0.95) and goals["routes10k"].met
    assert goals["latency"].value == pytest.approx(0.7) and goals["latency"].met
    assert goals["memory"].value == pytest.approx(150.0) and not goals["memory"].met


def test_goals_skip_scenarios_not_run() -> None:
    assert [g.scenario for g in report.evaluate_goals({"routes10k": SCENARIOS["routes10k"]})] \
        == ["routes10k"]


def test_results_table_and_readme_markers() -> None:
    doc = {"timestamp": "20260101T000000Z", "machine": {"nproc": 2}, "scenarios": SCENARIOS,
           "settings": {"runs": 3, "wrk_args": "-t1 -c50"}}
    table = report.render_results(doc)
    assert "| plain (hello) | throughput campusgate / nginx | 0.400x | >= 0.5x | **no** |" in table
    assert "| campusgate | 20,000 |" in table
    assert "| 10,000 | 150.0 |" in table
    readme = f"# Bench\n\n{report.START_MARKER}\nold table\n{report.END_MARKER}\n\nMore.\n"
    updated = report.replace_results(readme, table)
    assert "old table" not in updated and table in updated
    assert updated.startswith("# Bench\n") and updated.endswith("\nMore.\n")
    assert report.replace_results(updated, "new").count(report.START_MARKER) == 1
    appended = report.replace_results("# Bench\n", "t")
    assert appended.endswith(f"{report.START_MARKER}\nt\n{report.END_MARKER}\n")

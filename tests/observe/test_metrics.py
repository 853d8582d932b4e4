"""The metrics stage and the node's exporter: records in, Prometheus text out, merged
over worker processes through the metrics directory."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from access_samples import sample, series
from prometheus_client.parser import text_string_to_metric_families

from campusgate.config.model import Entities
from campusgate.config.observe import MetricsSettings, ObserveConfig
from campusgate.observe._metrics_tally import LATENCY_BUCKETS
from campusgate.observe._speedups import NO_EXTENSIONS_ENV
from campusgate.observe.batch import RecordBatch
from campusgate.observe.metrics import (
    NodeMetrics,
    RecordTally,
    WorkerReadings,
    build,
    node_metrics,
    prepare_node_dir,
    read_worker,
)
from campusgate.observe.runtime import ObserveRuntime
from campusgate.observe.sinks.base import SinkEnv
from campusgate.proxy.snapshot import compile_snapshot

ENV = SinkEnv(storage="sqlite:///unused.db", worker_id="test:1:0")
Values = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Values:
    """``(sample name, labels) -> value`` of a Prometheus text exposition."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(values: Values, name: str, **labels: str) -> float:
    return values[(name, frozenset(labels.items()))]


async def scrape(node: NodeMetrics) -> Values:
    body, content_type = await node.render(None)
    assert content_type.startswith("text/plain")
    return parse(body.decode())


async def test_requests_latencies_bytes_and_errors_are_counted() -> None:
    stage = build(ENV)
    await stage.write(series(3, latency_ms=0.5, bytes_in=100, bytes_out=1000))
    await stage.write([
        sample(latency_ms=12.5, upstream_latency_ms=10.0, status=502, error="upstream_error",
               retries=2),
        sample(latency_ms=3000.0, upstream_latency_ms=None, status=429, rate_limit="limited",
               error="rate_limited", upstream=None),
        sample(route=None, service=None, status=404, method="POST", error="no_route",
               upstream=None, upstream_latency_ms=None, latency_ms=0.2),
    ])
    values = await scrape(NodeMetrics(stage.tally, stage.settings))

    requests = "campusgate_http_requests_total"
    route = {"route": "roster-api", "service": "roster"}
    assert value(values, requests, **route, method="GET", status="200") == 3
    assert value(values, requests, **route, method="GET", status="502") == 1
    assert value(values, requests, route="", service="", method="POST", status="404") == 1
    assert not any("consumer" in dict(labels) for name, labels in values if name == requests)

    duration = "campusgate_http_request_duration_seconds"
    assert value(values, f"{duration}_bucket", **route, le="0.001") == 3
    assert value(values, f"{duration}_bucket", **route, le="0.025") == 4
    assert value(values, f"{duration}_bucket", **route, le="2.5") == 4
    assert value(values, f"{duration}_bucket", **route, le="5.0") == 5
    assert value(values, f"{duration}_bucket", **route, le="+Inf") == 5
    assert value(values, f"{duration}_count", **route) == 5
    assert value(values, f"{duration}_sum", **route) == pytest.approx((1.5 + 12.5 + 3000) / 1000)

    upstream = "campusgate_upstream_duration_seconds"
    target = {"service": "roster", "upstream": "127.0.0.1:9000"}
    assert value(values, f"{upstream}_count", **target) == 4  # 3 x 11 ms, 1 x 10 ms
    assert value(values, f"{upstream}_bucket", **target, le="0.01") == 1
    assert value(values, f"{upstream}_sum", **target) == pytest.approx(0.043)

    assert value(values, "campusgate_http_request_bytes_total", **route) == 300
    assert value(values, "campusgate_http_response_bytes_total", **route) == 3000 + 2 * 512
    errors = "campusgate_http_errors_total"
    assert value(values, errors, **route, error="upstream_error") == 1
    assert value(values, errors, route="", service="", error="no_route") == 1
    assert value(values, "campusgate_rate_limited_total", **route) == 1
    assert value(values, "campusgate_upstream_retries_total", service="roster") == 2


async def test_ai_tokens_and_cost_by_provider_and_model() -> None:
    stage = build(ENV)
    ai = {"ai_provider": "openai", "ai_model": "gpt-fast", "ai_provider_model": "gpt-4o-mini"}
    await stage.write([
        sample(**ai, ai_input_tokens=100, ai_output_tokens=20, ai_cached_tokens=50,
               ai_cost="0.0015"),
        sample(**ai, ai_input_tokens=10, ai_output_tokens=5, ai_cost="0.0005"),
        sample(ai_provider="claude", ai_model="sonnet", ai_input_tokens=7, ai_cost=None),
    ])
    values = await scrape(NodeMetrics(stage.tally, stage.settings))
    tokens = "campusgate_ai_tokens_total"
    assert value(values, tokens, provider="openai", model="gpt-fast", kind="input") == 110
    assert value(values, tokens, provider="openai", model="gpt-fast", kind="output") == 25
    assert value(values, tokens, provider="openai", model="gpt-fast", kind="cached") == 50
    assert value(values, tokens, provider="claude", model="sonnet", kind="input") == 7
    cost = "campusgate_ai_cost_usd_total"
    assert value(values, cost, provider="openai", model="gpt-fast") == pytest.approx(0.002)
    assert ("campusgate_ai_cost_usd_total",
            frozenset({"provider": "claude", "model": "sonnet"}.items())) not in values


async def test_the_consumer_label_is_opt_in() -> None:
    settings = MetricsSettings(consumer_label=True)
    stage = build(ENV, settings)
    await stage.write([sample(), sample(consumer="other"), sample(consumer=None,
                                                                  rate_limit="limited")])
    values = await scrape(NodeMetrics(stage.tally, settings))
    labels = {"route": "roster-api", "service": "roster", "method": "GET", "status": "200"}
    assert value(values, "campusgate_http_requests_total", **labels,
                 consumer="district-app") == 1
    assert value(values, "campusgate_http_requests_total", **labels, consumer="other") == 1
    assert value(values, "campusgate_http_requests_total", **labels, consumer="") == 1
    assert value(values, "campusgate_rate_limited_total", route="roster-api",
                 service="roster", consumer="") == 1


async def test_openmetrics_when_the_scraper_asks() -> None:
    stage = build(ENV)
    await stage.write([sample()])
    body, content_type = await NodeMetrics(stage.tally, stage.settings).render(
        "application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert content_type.startswith("application/openmetrics-text")
    text = body.decode()
    assert text.endswith("# EOF\n")
    assert "campusgate_http_requests_total{" in text


async def test_a_worker_reads_its_upstreams_queue_and_sinks() -> None:
    loop = asyncio.get_running_loop()
    entities = Entities.model_validate({
        "upstreams": [{"name": "pool", "targets": [{"target": "127.0.0.1:9001"},
                                                   {"target": "127.0.0.1:9002"}]}],
        "services": [{"name": "svc", "url": "http://pool",
                      "routes": [{"name": "r", "paths": ["/r"]}]}],
    })
    snap = compile_snapshot(5, entities, [], loop=loop)
    balancer = snap.balancers["pool"]
    bad = balancer.targets["127.0.0.1:9002"]
    while not balancer.report_failure(bad, loop.time(), "refused"):
        pass
    balancer.on_connect(balancer.targets["127.0.0.1:9001"])

    stage = build(ENV)
    observe = ObserveRuntime(ObserveConfig.model_validate({"access_log": {"queue_size": 100}}),
                             ENV, sinks=[stage], internal=False)
    await observe.writer.write(series(4))
    for i in range(103):  # three past the queue's size: the oldest are dropped
        observe.queue.put(i)  # type: ignore[arg-type]
    node = node_metrics(MetricsSettings(), observe.sinks,
                        lambda: read_worker(snap, observe))
    assert node is not None
    values = await scrape(node)

    healthy = "campusgate_upstream_target_healthy"
    assert value(values, healthy, upstream="pool", target="127.0.0.1:9001") == 1
    assert value(values, healthy, upstream="pool", target="127.0.0.1:9002") == 0
    assert value(values, "campusgate_upstream_connections_active", upstream="pool",
                 target="127.0.0.1:9001") == 1
    assert value(values, "campusgate_upstream_connections_idle", target="127.0.0.1:9001") == 0
    assert value(values, "campusgate_config_revision") == 5
    assert value(values, "campusgate_access_log_queue_depth") == 100
    assert value(values, "campusgate_access_log_dropped_total") == 3
    assert value(values, "campusgate_access_log_sink_records_total", sink="metrics",
                 outcome="written") == 4
    assert value(values, "campusgate_http_requests_total", route="roster-api",
                 service="roster", method="GET", status="200") == 4
    assert value(values, "campusgate_workers") == 1
    assert any(name == "campusgate_build_info" for name, _ in values)
    if sys.platform == "linux":
        assert value(values, "process_resident_memory_bytes") > 0
    await snap.retire(None)


def test_metrics_can_be_turned_off() -> None:
    assert node_metrics(MetricsSettings(enabled=False), [build(ENV)]) is None


WORKER_SCRIPT = """
import asyncio, sys
from pathlib import Path
from access_samples import series
from campusgate.observe.metrics import NodeMetrics, WorkerReadings, build
from campusgate.observe.sinks.base import SinkEnv

async def main(directory, count, stay):
    stage = build(SinkEnv("sqlite:///unused.db", "w"))
    await stage.write(series(count))
    def read():
        readings = WorkerReadings()
        readings.gauges["campusgate_access_log_queue_depth"].values[()] = float(count)
        return readings
    node = NodeMetrics(stage.tally, stage.settings, read, Path(directory))
    await node.publish()
    print("published", flush=True)
    if stay:
        sys.stdin.read()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "stay"))
"""


def run_worker(directory: Path, count: int, stay: bool) -> subprocess.Popen[str]:
    tests = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, str(directory), str(count),
                             "stay" if stay else "exit"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "published"
    return proc


async def test_the_node_sums_every_worker_and_keeps_counters_of_exited_ones(
    tmp_path: Path,
) -> None:
    directory = prepare_node_dir(tmp_path / "metrics")
    gone = await asyncio.to_thread(run_worker, directory, 5, False)
    assert await asyncio.to_thread(gone.wait, 30) == 0
    alive = await asyncio.to_thread(run_worker, directory, 7, True)
    try:
        stage = build(ENV)
        await stage.write(series(2))
        node = NodeMetrics(stage.tally, stage.settings, None, directory)
        values = await scrape(node)
    finally:
        alive.communicate("", timeout=30)
    labels = {"route": "roster-api", "service": "roster", "method": "GET", "status": "200"}
    # counters: this worker, the live one and the one that exited
    assert value(values, "campusgate_http_requests_total", **labels) == 2 + 7 + 5
    assert value(values, "campusgate_http_request_duration_seconds_count",
                 route="roster-api", service="roster") == 14
    # gauges: live workers only
    assert value(values, "campusgate_access_log_queue_depth") == 7
    assert value(values, "campusgate_workers") == 2

    # Once the second one exits too, its gauges go and its counters stay.
    values = await scrape(node)
    assert ("campusgate_access_log_queue_depth", frozenset()) not in values
    assert value(values, "campusgate_workers") == 1
    assert value(values, "campusgate_http_requests_total", **labels) == 14

    await node.publish()  # this worker's own file is not counted twice
    assert value(await scrape(node), "campusgate_http_requests_total", **labels) == 14
    # A new `campusgate serve` starts from nothing.
    prepare_node_dir(directory)
    assert value(await scrape(node), "campusgate_http_requests_total", **labels) == 2


async def test_an_unreadable_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "worker-1.json").write_text("{not json")
    stage = build(ENV)
    await stage.write(series(1))
    values = await scrape(NodeMetrics(stage.tally, stage.settings, None, tmp_path))
    assert value(values, "campusgate_http_requests_total", route="roster-api",
                 service="roster", method="GET", status="200") == 1


def test_readings_of_an_idle_worker() -> None:
    readings = read_worker(None, None)
    assert isinstance(readings, WorkerReadings)
    assert readings.gauges["campusgate_config_revision"].values == {}


def test_a_batch_counts_exactly_as_its_records_one_at_a_time() -> None:
    # a big batch is counted group by group, column by column; one record alone is not
    records = [sample(route=f"r{i % 3}", status=503 if i % 7 == 0 else 200,
                      error="upstream_status" if i % 7 == 0 else None,
                      latency_ms=0.5 + i % 97 * 1.5, retries=i % 2,
                      upstream_latency_ms=None if i % 5 == 0 else 0.25 * (i % 41))
               for i in range(2000)]
    whole, each = RecordTally(), RecordTally()
    whole.add(records)
    for record in records:
        each.add([record])
    assert whole.entries == each.entries and whole.errors == each.errors
    assert sum(sum(acc[:16]) for acc in whole.entries.values()) == 2000


def test_latency_buckets_are_the_same_counted_in_c_or_from_a_sort(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch's latencies go into the Prometheus buckets by ``bisect_left`` of
    each value: in C (``_rowpack.le_counts``) or from the batch's sorted column."""
    rng = random.Random(9)
    bounds = [bound * 1000 for bound in LATENCY_BUCKETS]
    latencies = [rng.lognormvariate(0.0, 2.0) for _ in range(3000)] + bounds
    records = [sample(time=1_700_000_000.0 + i, latency_ms=ms,
                      upstream_latency_ms=None if i % 7 == 0 else ms / 2)
               for i, ms in enumerate(latencies)]
    tallies = []
    for pure in ("", "1"):
        monkeypatch.setenv(NO_EXTENSIONS_ENV, pure)
        tally = RecordTally()
        tally.add(RecordBatch.of(records))
        tally.add(RecordBatch.of(records[:40]))  # onto what the slots already hold
        tallies.append(tally.entries)
    assert tallies[0] == tallies[1] and sum(next(iter(tallies[0].values()))) > 0

"""``GET /metrics`` on the admin API: open by default, a token when required, 404 when
metrics are off."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from campusgate.admin import StaticRuntime, create_admin_app
from campusgate.config.observe import MetricsSettings
from campusgate.observe.metrics import NodeMetrics, build, node_metrics
from campusgate.observe.record import AccessRecord
from campusgate.observe.sinks.base import SinkEnv
from campusgate.store import ConfigStore

RECORD = AccessRecord(
    time=1.0, request_id="r", trace_id="1" * 32, span_id="2" * 16, parent_span_id=None,
    listener="proxy", worker=1, route="users", service="roster", upstream="127.0.0.1:1",
    consumer=None, credential=None, client_ip="127.0.0.1", method="GET", host="h",
    path="/users", status=200, bytes_in=0, bytes_out=10, latency_ms=3.0,
    upstream_latency_ms=2.0, overhead_ms=1.0, retries=0, rate_limit=None, error=None,
)


class MetricsRuntime(StaticRuntime):
    """The admin API's stand-in runtime, with the metrics a worker would have."""

    def __init__(self, metrics: NodeMetrics | None) -> None:
        super().__init__(revision=3)
        self.metrics = metrics


async def node(settings: MetricsSettings) -> NodeMetrics | None:
    stage = build(SinkEnv("sqlite:///unused.db", "w"), settings)
    await stage.write([RECORD, RECORD])
    return node_metrics(settings, [stage])


@pytest.fixture
async def admin(store: ConfigStore) -> AsyncIterator[
        tuple[httpx.AsyncClient, MetricsRuntime]]:
    runtime = MetricsRuntime(await node(MetricsSettings()))
    app = create_admin_app(store, runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                 base_url="http://admin.test") as client:
        yield client, runtime


async def test_metrics_need_no_token_by_default(
    admin: tuple[httpx.AsyncClient, MetricsRuntime], token: str,
) -> None:
    client, _ = admin
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(response.text) for s in f.samples}
    key = ("campusgate_http_requests_total", (("method", "GET"), ("route", "users"),
                                              ("service", "roster"), ("status", "200")))
    assert samples[key] == 2
    assert samples[("campusgate_http_request_duration_seconds_bucket",
                    (("le", "0.005"), ("route", "users"), ("service", "roster")))] == 2

    openmetrics = await client.get("/metrics",
                                   headers={"Accept": "application/openmetrics-text"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")


async def test_a_token_when_required(
    admin: tuple[httpx.AsyncClient, MetricsRuntime], token: str,
) -> None:
    client, runtime = admin
    runtime.metrics = await node(MetricsSettings(require_token=True))
    denied = await client.get("/metrics")
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "unauthorized"
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer cgadm_wrong"})
    assert wrong.status_code == 401
    for headers in ({"Authorization": f"Bearer {token}"}, {"Campusgate-Admin-Token": token}):
        allowed = await client.get("/metrics", headers=headers)
        assert allowed.status_code == 200
        assert "campusgate_http_requests_total" in allowed.text


async def test_404_when_metrics_are_off(
    admin: tuple[httpx.AsyncClient, MetricsRuntime], anonymous: httpx.AsyncClient,
) -> None:
    client, runtime = admin
    runtime.metrics = await node(MetricsSettings(enabled=False))
    assert runtime.metrics is None
    off = await client.get("/metrics")
    assert off.status_code == 404
    assert "observe.metrics.enabled" in off.json()["error"]["message"]
    # A runtime without metrics at all (the admin API served on its own) is the same.
    assert (await anonymous.get("/metrics")).status_code == 404


async def test_metrics_are_in_the_openapi_document(
    admin: tuple[httpx.AsyncClient, MetricsRuntime],
) -> None:
    client, _ = admin
    spec = (await client.get("/openapi.json")).json()
    assert spec["paths"]["/metrics"]["get"]["tags"] == ["metrics"]

"""``/observe/alerts`` and ``/observe/trends`` over a real evaluator on the admin
store, with a real webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from alert_fixtures import DAY, NOON, Receiver, webhook_receiver, window, write_rollups
from campusgate.admin import StaticRuntime, create_admin_app
from campusgate.config.observe_alerts import AlertsConfig
from campusgate.observe.alerts import AlertService, AlertSources
from campusgate.store import ConfigStore

WINDOW = 900


async def no_sleep(seconds: float) -> None:
    return None


class AlertingRuntime(StaticRuntime):
    def __init__(self, alerts: AlertService) -> None:
        super().__init__(revision=1)
        self.alerts = alerts


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as got:
        yield got


@pytest.fixture
async def service(store: ConfigStore, receiver: Receiver) -> AsyncIterator[AlertService]:
    dsn = store.url.render_as_string(hide_password=False)
    records = []
    for d in range(1, 4):
        records += window(NOON - d * DAY - WINDOW, WINDOW, latency=50.0)
    records += window(NOON - WINDOW, WINDOW, latency=200.0)
    await write_rollups(dsn, records)
    alerts = AlertsConfig.model_validate({
        "webhooks": [{"name": "chat", "url": f"{receiver.url}/services/T0/B0/secret",
                      "format": "slack"}],
        "rules": [{"name": "slow", "kind": "latency-regression", "for": 0, "min_requests": 20,
                   "webhooks": ["chat"]},
                  {"name": "quiet", "kind": "error-rate"}]})
    made = AlertService(alerts, dsn, AlertSources(), holder="w1", clock=lambda: NOON,
                        sleep=no_sleep)
    yield made
    await made.close()


@pytest.fixture
async def alerting(store: ConfigStore, token: str, service: AlertService
                   ) -> AsyncIterator[httpx.AsyncClient]:
    app = create_admin_app(store, AlertingRuntime(service))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://admin.test",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


async def test_rules_history_and_trends(alerting: httpx.AsyncClient, service: AlertService,
                                        receiver: Receiver) -> None:
    before = (await alerting.get("/observe/alerts")).json()
    assert [(r["name"], r["state"]) for r in before["rules"]] == [("slow", "ok"),
                                                                  ("quiet", "ok")]
    trends = (await alerting.get("/observe/trends")).json()["items"]
    assert [(f["kind"], f["subject"]) for f in trends] == [
        ("latency-regression", {"route": "roster"}),
        ("latency-regression", {"upstream": "10.0.0.1:80"})]  # a default rule per upstream
    everything = (await alerting.get("/observe/trends", params={"all": "true"})).json()["items"]
    assert any(not f["breached"] and f["kind"] == "error-rate" for f in everything)

    await service.evaluate_once()
    assert (await receiver.next()).body["text"].startswith("[FIRING] slow")
    rules: dict[str, Any] = {r["name"]: r for r in
                             (await alerting.get("/observe/alerts")).json()["rules"]}
    assert rules["slow"]["state"] == "firing"
    assert rules["slow"]["firing"][0]["subject"] == {"route": "roster"}
    assert rules["quiet"]["state"] == "ok"
    history = (await alerting.get("/observe/alerts/history")).json()
    assert [(e["rule"], e["state"]) for e in history["items"]] == [("slow", "firing")]
    assert history["next_before_id"] is None
    page = (await alerting.get("/observe/alerts/history", params={"limit": 1})).json()
    assert page["next_before_id"] == page["items"][0]["id"]


async def test_test_notification(alerting: httpx.AsyncClient, receiver: Receiver) -> None:
    answer = await alerting.post("/observe/alerts/slow/test")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"rule": "slow", "webhooks": [{"name": "chat", "delivered": True}]}
    got = await receiver.next()
    assert got.path == "/services/T0/B0/secret"
    assert got.body["text"] == "[TEST] slow: test notification of alert rule slow"
    history = (await alerting.get("/observe/alerts/history", params={"state": "test"})).json()
    assert [e["rule"] for e in history["items"]] == ["slow"]
    missing = await alerting.post("/observe/alerts/nope/test")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]


async def test_bad_parameters_and_no_evaluator(alerting: httpx.AsyncClient,
                                               client: httpx.AsyncClient) -> None:
    assert (await alerting.get("/observe/alerts/history",
                               params={"state": "maybe"})).status_code in (400, 422)
    wrong = {"Authorization": "Bearer wrong"}
    assert (await alerting.get("/observe/alerts", headers=wrong)).status_code == 401
    off = await client.get("/observe/trends")  # StaticRuntime: no evaluator
    assert off.status_code == 404 and "alerts are off" in off.json()["error"]["message"]

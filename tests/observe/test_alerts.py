"""Alert rules over generated roll-ups, real budget counters and real ejections, with
webhooks delivered to a real local HTTP receiver."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trustme
from pydantic import ValidationError

from alert_fixtures import DAY, NOON, Receiver, webhook_receiver, window, write_rollups
from campusgate.ai.budgets import counter_key, period_bounds
from campusgate.config.ai import AiBudget
from campusgate.config.model import Upstream
from campusgate.config.observe_alerts import AlertsConfig, Webhook
from campusgate.observe.alerts import AlertService, AlertSources, Notifier
from campusgate.proxy.balancer import Balancer
from campusgate.proxy.health import ActiveHealthChecker
from campusgate.state.memory import MemoryState

WINDOW = 900


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def no_sleep(seconds: float) -> None:
    return None


def config(receiver: Receiver, *rules: dict[str, Any]) -> AlertsConfig:
    return AlertsConfig.model_validate({
        "interval": 60,
        "webhooks": [{"name": "ops", "url": receiver.url + "/hook", "headers": {"x-t": "s"}},
                     {"name": "chat", "url": receiver.url + "/slack", "format": "slack"}],
        "rules": list(rules)})


SLOW = {"name": "slow", "kind": "latency-regression", "for": 0, "resolve_after": 0,
        "min_requests": 20, "webhooks": ["ops", "chat"], "severity": "critical"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as got:
        yield got


@pytest.fixture
async def make_service(storage: str) -> AsyncIterator[Callable[..., AlertService]]:
    made: list[AlertService] = []

    def make(alerts: AlertsConfig, clock: Clock, sources: AlertSources | None = None,
             holder: str = "w1") -> AlertService:
        service = AlertService(alerts, storage, sources or AlertSources(), holder=holder,
                               clock=clock, sleep=no_sleep)
        made.append(service)
        return service

    yield make
    for service in made:
        await service.close()


def history(route: str, latency: float, days: int = 3, **kw: Any) -> list[Any]:
    """The same two windows (before and after NOON) on each previous day, and the
    previous hours' windows."""
    out = []
    for d in range(1, days + 1):
        out += window(NOON - d * DAY - WINDOW, 2 * WINDOW, route=route, latency=latency, **kw)
    for h in range(1, 7):
        out += window(NOON - h * 3600 - WINDOW, WINDOW, route=route, latency=latency, **kw)
    return out


async def test_a_latency_regression_fires_notifies_and_resolves(
        storage: str, receiver: Receiver, make_service: Callable[..., AlertService]) -> None:
    records = history("roster", 50.0) + history("grades", 80.0)
    records += window(NOON - WINDOW, WINDOW, route="roster", latency=150.0)  # x3
    records += window(NOON - WINDOW, WINDOW, route="grades", latency=80.0)
    records += window(NOON, WINDOW, route="roster", latency=50.0)  # over by the next window
    await write_rollups(storage, records)
    clock = Clock(NOON)
    service = make_service(config(receiver, SLOW), clock)

    fired = await service.evaluate_once()
    assert [(t.state, t.finding.key) for t in fired] == [("firing", "route=roster")]
    finding = fired[0].finding
    assert finding.details["basis"] == "time-of-day"
    assert finding.value is not None and finding.baseline is not None
    assert 2.5 < finding.value / finding.baseline < 3.5
    got = {r.path: r for r in [await receiver.next(), await receiver.next()]}
    hook, slack = got["/hook"], got["/slack"]
    assert hook.headers["x-t"] == "s" and hook.headers["content-type"] == "application/json"
    assert hook.body["state"] == "firing" and hook.body["rule"] == "slow"
    assert hook.body["subject"] == {"route": "roster"} and hook.body["severity"] == "critical"
    assert hook.body["kind"] == "latency-regression" and hook.body["time"].endswith("Z")
    assert hook.body["value"] == finding.value and "p95 latency" in hook.body["summary"]
    assert slack.body["text"].startswith("[FIRING] slow: p95 latency of route roster")
    assert [b["type"] for b in slack.body["blocks"]] == ["header", "section", "context"]
    assert "route `roster`" in slack.body["blocks"][1]["text"]["text"]

    assert await service.evaluate_once() == []  # still firing: no second notification
    assert [r["state"] for r in await service.rules_state()] == ["firing"]

    clock.now = NOON + WINDOW
    resolved = await service.evaluate_once()
    assert [(t.state, t.finding.key) for t in resolved] == [("resolved", "route=roster")]
    assert (await receiver.next()).body["state"] == "resolved"
    assert (await receiver.next()).body["text"].startswith("[RESOLVED] slow")
    events = await service.history.events()
    assert [(e["state"], e["subject"]) for e in events] == [
        ("resolved", {"route": "roster"}), ("firing", {"route": "roster"})]
    assert await service.history.firing() == []


async def test_no_false_alarm_on_a_flat_history_or_a_daily_cycle(
        storage: str, receiver: Receiver, make_service: Callable[..., AlertService]) -> None:
    # roster: flat; grades: slow every day at noon, fast the hours before
    records = history("roster", 50.0) + window(NOON - WINDOW, WINDOW, route="roster")
    for d in range(1, 4):
        records += window(NOON - d * DAY - WINDOW, WINDOW, route="grades", latency=300.0)
    for h in range(1, 7):
        records += window(NOON - h * 3600 - WINDOW, WINDOW, route="grades", latency=50.0)
    records += window(NOON - WINDOW, WINDOW, route="grades", latency=300.0)
    await write_rollups(storage, records)
    service = make_service(config(receiver, SLOW), Clock(NOON))
    assert await service.evaluate_once() == []
    assert [f.key for f in await service.trends() if f.breached] == []

    # Without enough days of history the previous hours stand in: noon looks slow.
    fallback = make_service(config(receiver, {**SLOW, "name": "hours", "webhooks": [],
                                              "baseline_days": 5, "min_baseline_days": 5}),
                            Clock(NOON), holder="w2")
    await fallback.history.release_lease("w1")
    fired = await fallback.evaluate_once()
    assert [(t.finding.key, t.finding.details["basis"]) for t in fired] == [
        ("route=grades", "recent-hours")]


async def test_error_rate_per_upstream(storage: str, receiver: Receiver,
                                       make_service: Callable[..., AlertService]) -> None:
    records = history("roster", 50.0, every_error=50)  # 2% usually
    records += window(NOON - WINDOW, WINDOW, route="roster", every_error=3)  # 33%
    await write_rollups(storage, records)
    rule = {"name": "errors", "kind": "error-rate", "per": "upstream", "for": 0,
            "min_requests": 20, "webhooks": ["ops"]}
    service = make_service(config(receiver, rule), Clock(NOON))
    fired = await service.evaluate_once()
    assert [t.finding.key for t in fired] == ["upstream=10.0.0.1:80"]
    body = (await receiver.next()).body
    assert body["kind"] == "error-rate" and body["value"] > 0.3
    assert body["baseline"] == pytest.approx(0.02, abs=0.01)


async def test_only_the_lease_holder_evaluates(storage: str, receiver: Receiver,
                                               make_service: Callable[..., AlertService]) -> None:
    records = history("roster", 50.0) + window(NOON - WINDOW, WINDOW, latency=150.0)
    await write_rollups(storage, records)
    clock = Clock(NOON)
    first = make_service(config(receiver, {**SLOW, "webhooks": []}), clock, holder="w1")
    second = make_service(config(receiver, {**SLOW, "webhooks": []}), clock, holder="w2")
    assert len(await first.evaluate_once()) == 1
    assert await second.evaluate_once() == [] and not second.leader
    # w1 stops renewing: after 3 intervals w2 takes over, knowing roster is firing
    clock.now = NOON + 181
    assert await second.evaluate_once() == [] and second.leader
    assert [s.finding.key for s in second.trackers["slow"].firing()] == ["route=roster"]


async def test_budget_forecast_on_synthetic_consumption(
        storage: str, receiver: Receiver, make_service: Callable[..., AlertService]) -> None:
    state = MemoryState()
    budget = AiBudget(name="district", consumer="district-app", period="day", tokens=1000)
    start, end = period_bounds("day", NOON)
    key = counter_key(budget, start, "tokens")
    await state.incr(key, 600, end.timestamp() - NOON)
    sources = AlertSources(budgets=lambda: [budget], state=lambda: state)
    rule = {"name": "budget", "kind": "budget-forecast", "for": 0, "horizon": "4h",
            "webhooks": ["ops"]}
    clock = Clock(NOON)
    service = make_service(config(receiver, rule), clock, sources)
    # 600 by noon: 50/h, runs out at 20:00 -- beyond the 4 h horizon
    assert await service.evaluate_once() == []
    [finding] = await service.checks.run(service.rules["budget"], NOON)
    assert finding.details["exhausted_at"] == pytest.approx(NOON + 8 * 3600)
    # 300 more in the next half hour: 600/h, 100 left -> 10 minutes
    await state.incr(key, 300, 1)
    clock.now = NOON + 1800
    [fired] = await service.evaluate_once()
    assert fired.finding.subject == {"budget": "district", "limit": "tokens"}
    assert fired.finding.details["exhausted_at"] == pytest.approx(NOON + 1800 + 600)
    assert fired.finding.details["rate_per_hour"] == pytest.approx(600)
    body = (await receiver.next()).body
    assert body["kind"] == "budget-forecast" and "runs out in 10 min" in body["summary"]


async def test_targets_failing_health_checks_are_flagged(
        storage: str, receiver: Receiver, make_service: Callable[..., AlertService]) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    upstream = Upstream.model_validate({
        "name": "pool", "targets": [{"target": dead}, {"target": "127.0.0.1:1"}],
        "healthchecks": {"active": {"unhealthy_threshold": 1, "healthy_threshold": 1,
                                    "timeout": 1}}})
    balancer = Balancer(upstream)
    checker = ActiveHealthChecker(upstream, balancer)
    await checker.check_once()  # both fail: ejected once each
    assert balancer.targets[dead].ejections == 1
    now = NOON
    for _ in range(3):  # and the dead one also fails requests (passive ejections)
        for _ in range(5):
            balancer.report_failure(balancer.targets[dead], now, "refused")
        now += 11
    state = MemoryState()
    sources = AlertSources(balancers=lambda: {"pool": balancer}, state=lambda: state)
    rule = {"name": "flappy", "kind": "target-ejections", "max_ejections": 2, "for": 0,
            "resolve_after": 0, "webhooks": ["ops"]}
    clock = Clock(NOON)
    service = make_service(config(receiver, rule), clock, sources)
    fired = await service.evaluate_once()
    assert [(t.finding.subject["target"], t.finding.value) for t in fired] == [(dead, 4)]
    assert (await receiver.next()).body["subject"] == {"upstream": "pool", "target": dead}
    # 16 minutes later, no ejection since: resolved
    clock.now = NOON + 960
    assert [(t.state, t.finding.value) for t in await service.evaluate_once()] == [
        ("resolved", 0)]


async def test_a_failing_webhook_is_retried_and_its_secrets_never_logged(
        storage: str, receiver: Receiver, make_service: Callable[..., AlertService],
        caplog: pytest.LogCaptureFixture) -> None:
    receiver.script = [503, 500]
    alerts = AlertsConfig.model_validate({
        "webhooks": [{"name": "ops", "url": receiver.url + "/hooks/s3cr3t?token=t0k3n",
                      "headers": {"authorization": "Bearer h3ad3r"}}],
        "rules": [{"name": "r", "kind": "error-rate", "webhooks": ["ops"]}]})
    service = make_service(alerts, Clock(NOON))
    assert await service.test("r") == {"ops": True}
    assert (await receiver.next()).body["state"] == "test"
    receiver.script = [503] * 10
    assert await service.test("r") == {"ops": False}
    assert [e["state"] for e in await service.history.events()] == ["test", "test"]
    assert "alert webhook ops was not delivered" in caplog.text and "503" in caplog.text
    assert not any(word in caplog.text for word in ("s3cr3t", "t0k3n", "h3ad3r"))


@pytest.mark.parametrize(("rules", "words"), [
    ([{"name": "r", "kind": "error-rate", "webhooks": ["nowhere"]}], "unknown webhook"),
    ([{"name": "r", "kind": "error-rate", "factor": 0.5}], "greater than 1"),
    ([{"name": "r", "kind": "error-rate", "scope": {"budget": "b"}}], "not budget"),
    ([{"name": "r", "kind": "budget-forecast", "scope": {"route": "x"}}], "scopes by budget"),
    ([{"name": "r", "kind": "latency-regression", "quantile": 0.7}], "quantile"),
    ([{"name": "r", "kind": "error-rate"}, {"name": "r", "kind": "error-rate"}], "twice"),
    ([{"name": "r", "kind": "spikes"}], "latency-regression"),
])
def test_bad_rules_fail_at_load(rules: list[dict[str, Any]], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        AlertsConfig.model_validate({"rules": rules})


def test_the_docs_example_loads() -> None:
    import re
    from pathlib import Path

    from campusgate.config.loader import load_config_text

    page = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()
    section = page.split("\n## Trends and alerts\n", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    env = {"ALERT_TOKEN": "t", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/x"}
    alerts = load_config_text(block, "docs/observability.md", env=env).observe.alerts
    assert [r.kind for r in alerts.rules] == ["latency-regression", "error-rate",
                                              "budget-forecast", "quota-forecast",
                                              "target-ejections"]
    assert alerts.rules[0].for_ == 300 and alerts.webhooks[1].format == "slack"


async def test_a_webhook_over_https_with_a_private_ca(tmp_path: Any) -> None:
    """``tls.ca_file`` on a webhook: the receiver's certificate is verified against
    it; without it (the system's CAs) the same receiver is not trusted."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    bodies: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        bodies.append(await reader.readexactly(length))
        writer.write(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_ctx)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    trusted = Webhook(name="ops", url=url, retries=0, tls={"ca_file": str(tmp_path / "ca.pem")})
    untrusted = Webhook(name="chat", url=url, retries=0)
    notifier = Notifier([trusted, untrusted])
    event = {"state": "firing", "rule": "r", "kind": "error-rate", "severity": "warning",
             "subject": {"route": "roster"}, "message": "errors up", "time": NOON}
    try:
        assert await notifier.send(trusted, event) is True
        assert await notifier.send(untrusted, event) is False
    finally:
        await notifier.close()
        server.close()
        await server.wait_closed()
    assert len(bodies) == 1 and b'"firing"' in bodies[0]
    with pytest.raises(ValidationError, match="need an https:// url"):
        Webhook(name="x", url="http://127.0.0.1/hook", tls={})

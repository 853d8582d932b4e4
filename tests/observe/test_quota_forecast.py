"""``quota-forecast`` rules: rate-limit quotas forecast from generated roll-ups in a
real store (SQLite and PostgreSQL), over a real revision's plugin specs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import ValidationError

from alert_fixtures import BASE, DAY, NOON, write_rollups
from campusgate.config.loader import load_config_text
from campusgate.config.model import Entities
from campusgate.config.observe_alerts import AlertsConfig
from campusgate.observe.alerts import AlertService, AlertSources, Quota, rate_limit_quotas
from campusgate.observe.record import AccessRecord

HOUR = 3600


def rate_limit(*limits: tuple[str, int], by: str = "consumer", **extra: Any) -> dict[str, Any]:
    return {"name": "rate-limit", "config": {
        "by": by, "limits": [{"window": w, "limit": n} for w, n in limits], **extra}}


#: global: 1m (a rate, not forecast) and 1d; service sis: 1h; route roster: 1d; route
#: files: a daily limit per address (not forecast, and the global one does not count it).
#: Unauthenticated calls are "guest"'s; "frank" is in a group with limits of its own;
#: "gina" has her own, which wins over her group's; "hank" is in two groups with limits,
#: and the one listed first wins.
ENTITIES = Entities.model_validate({
    "plugins": [rate_limit(("1m", 100), ("1d", 1000)),
                {"name": "key-auth", "config": {"anonymous": "guest"}}],
    "consumers": [{"name": "guest"}, {"name": "frank", "groups": ["partners"]},
                  {"name": "alice"},
                  {"name": "gina", "groups": ["partners"], "plugins": [rate_limit(("1d", 1000))]},
                  {"name": "hank", "groups": ["teachers", "partners"]}],
    "consumer_groups": [{"name": "partners", "plugins": [rate_limit(("1d", 50_000))]},
                        {"name": "teachers", "plugins": [rate_limit(("1h", 200))]}],
    "services": [
        {"name": "sis", "url": "http://10.0.0.1", "plugins": [rate_limit(("1h", 500))],
         "routes": [{"name": "grades", "paths": ["/grades"]},
                    {"name": "roster", "paths": ["/roster"],
                     "plugins": [rate_limit(("1d", 1000), cost=1)]}]},
        {"name": "lms", "url": "http://10.0.0.2",
         "routes": [{"name": "courses", "paths": ["/courses"]},
                    {"name": "files", "paths": ["/files"],
                     "plugins": [rate_limit(("1d", 5000), by="ip")]}]},
    ]})


def traffic(consumer: str | None, route: str, start: float, seconds: float, count: int, *,
            limited: bool = False) -> list[AccessRecord]:
    """``count`` requests evenly over ``[start, start + seconds)``; ``limited``: each
    refused with a 429 by a rate limit."""
    service = "sis" if route in ("grades", "roster") else "lms"
    step = seconds / count
    return [BASE._replace(time=start + n * step, request_id=f"{consumer}-{route}-{start}-{n}",
                    route=route, service=service, consumer=consumer,
                    status=429 if limited else 200,
                    rate_limit="limited" if limited else "allowed")
            for n in range(count)]


RECORDS = [
    # alice: 100 an hour for 8 hours on roster (80% of 1000): out in 2 h
    *traffic("alice", "roster", NOON - 8 * HOUR, 8 * HOUR, 800),
    # ... and 400 more yesterday, out of the sliding day
    *traffic("alice", "roster", NOON - 30 * HOUR, 4 * HOUR, 400),
    # bob: slow, 10%
    *traffic("bob", "roster", NOON - 8 * HOUR, 8 * HOUR, 100),
    # carol: 500 admitted over 5 hours, 600 refused in the last hour
    *traffic("carol", "roster", NOON - 5 * HOUR, 5 * HOUR, 500),
    *traffic("carol", "roster", NOON - HOUR, HOUR, 600, limited=True),
    # dave: 450 on grades in the last hour (90% of sis' 1h), 300 on roster before
    *traffic("dave", "grades", NOON - HOUR, HOUR, 450),
    *traffic("dave", "roster", NOON - 3 * HOUR, 2 * HOUR, 300),
    # erin: courses count under the global quota; files (own limit) and grades do not
    *traffic("erin", "courses", NOON - 2 * HOUR, 2 * HOUR, 300),
    *traffic("erin", "files", NOON - 2 * HOUR, 2 * HOUR, 900),
    *traffic("erin", "grades", NOON - HOUR, HOUR, 100),
    # no consumer, the anonymous consumer: counted by address, never forecast;
    # frank: his group's own limit counts him, not the global one
    *traffic(None, "courses", NOON - HOUR, HOUR, 900),
    *traffic("guest", "courses", NOON - HOUR, HOUR, 900),
    *traffic("frank", "courses", NOON - HOUR, HOUR, 900),
    # gina: 950 of her own 1000 a day, on every route (95%); none of it is sis' or global
    *traffic("gina", "courses", NOON - 10 * HOUR, 10 * HOUR, 500),
    *traffic("gina", "grades", NOON - 10 * HOUR, 10 * HOUR, 450),
    # hank: 150 in the last hour of teachers' 200 an hour: out in 20 minutes
    *traffic("hank", "courses", NOON - HOUR, HOUR, 150),
]


async def no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
async def make_service(storage: str) -> AsyncIterator[Callable[..., AlertService]]:
    await write_rollups(storage, RECORDS)
    made: list[AlertService] = []
    quotas = rate_limit_quotas(ENTITIES)

    def make(**rule: Any) -> AlertService:
        alerts = AlertsConfig.model_validate({"rules": [
            {"name": "quotas", "kind": "quota-forecast", "for": 0, "horizon": "4h", **rule}]})
        service = AlertService(alerts, storage, AlertSources(quotas=lambda: quotas),
                               holder="w1", clock=lambda: NOON, sleep=no_sleep)
        made.append(service)
        return service

    yield make
    for service in made:
        await service.close()


def test_quotas_of_a_revision() -> None:
    quotas = rate_limit_quotas(ENTITIES)
    assert [(q.label, q.limit, dict(q.within), [dict(e) for e in q.excluding])
            for q in quotas] == [
        # the 1m window is a rate; files' per-address limit is not forecast but still
        # takes files out of the global quota, as sis' own limit takes sis out
        ("1d at global", 1000, {}, [{"service": "sis"}, {"route": "files"}]),
        ("1h at service:sis", 500, {"service": "sis"}, [{"route": "roster"}]),
        ("1d at route:roster", 1000, {"route": "roster"}, []),
        # a consumer's limit, then each group's, counting the consumers it wins for
        ("1d at consumer:gina", 1000, {"consumer": "gina"}, []),
        ("1d at group:partners", 50_000, {}, []),
        ("1h at group:teachers", 200, {}, []),
    ]
    assert [q.only for q in quotas] == [None, None, None, frozenset({"gina"}),
                                        frozenset({"frank"}), frozenset({"hank"})]
    assert quotas[0].skipped == frozenset({"guest", "frank", "gina", "hank"})


def test_a_disabled_limit_still_takes_its_route_out_and_the_ai_gateway_counts() -> None:
    entities = Entities.model_validate({
        "plugins": [rate_limit(("1mo", 100_000), cost=2)],
        "services": [{"name": "sis", "url": "http://10.0.0.1", "routes": [
            {"name": "open", "paths": ["/open"],
             "plugins": [{**rate_limit(("1d", 10)), "enabled": False}]}]}],
        "ai": {"providers": [{"name": "p", "type": "openai", "api_key": "sk-k"}],
               "models": [{"name": "m", "targets": [{"provider": "p", "model": "x"}]}],
               "plugins": [rate_limit(("1w", 700))]}})
    assert [(q.label, q.cost, [dict(e) for e in q.excluding])
            for q in rate_limit_quotas(entities)] == [
        ("1mo at global", 2, [{"route": "open"}, {"service": "campusgate-ai"}]),
        ("1w at service:campusgate-ai", 1, [])]


async def test_quota_forecasts_over_rollups(make_service: Callable[..., AlertService]) -> None:
    service = make_service()
    findings = await service.checks.run(service.rules["quotas"], NOON)
    got = {(f.subject["consumer"], f.subject["quota"]): f for f in findings}
    assert {k: (f.value, f.breached) for k, f in got.items()} == {
        ("alice", "1d at route:roster"): (800, True),
        ("bob", "1d at route:roster"): (100, False),
        ("carol", "1d at route:roster"): (500, False),   # the 429s are not counted
        ("dave", "1d at route:roster"): (300, False),
        ("dave", "1h at service:sis"): (450, True),      # roster is not sis' 1h
        ("erin", "1h at service:sis"): (100, False),
        ("erin", "1d at global"): (300, False),          # nor files, nor sis
        ("frank", "1d at group:partners"): (900, False),
        ("gina", "1d at consumer:gina"): (950, True),     # 95% used, on any route
        ("hank", "1h at group:teachers"): (150, True),    # his first group's limit
    }
    alice = got["alice", "1d at route:roster"]
    assert alice.kind == "quota-forecast" and alice.threshold == 1000
    assert alice.details["exhausted_at"] == pytest.approx(NOON + 2 * HOUR)
    assert alice.details["rate_per_hour"] == pytest.approx(100)
    assert "consumer alice quota 1d at route:roster runs out in 2.0 h" in alice.message
    assert got["dave", "1h at service:sis"].details["exhausted_at"] == pytest.approx(NOON + 400)
    assert got["carol", "1d at route:roster"].details["exhausted_at"] == pytest.approx(
        NOON + 5 * HOUR)
    # bob would need 72 h: beyond one window-length, the day never fills at his pace
    assert got["bob", "1d at route:roster"].details["exhausted_at"] is None

    assert got["hank", "1h at group:teachers"].details["exhausted_at"] == pytest.approx(
        NOON + 20 * 60)
    # frank would need 54 h at 900 an hour: beyond the day
    assert got["frank", "1d at group:partners"].details["exhausted_at"] is None

    fired = await service.evaluate_once()
    assert sorted(t.finding.key for t in fired) == [
        "consumer=alice,quota=1d at route:roster", "consumer=dave,quota=1h at service:sis",
        "consumer=gina,quota=1d at consumer:gina", "consumer=hank,quota=1h at group:teachers"]
    assert {t.finding.kind for t in fired} == {"quota-forecast"}


@pytest.mark.parametrize(("scope", "expected"), [
    ({"route": "roster"}, {("alice", "roster"), ("bob", "roster"), ("carol", "roster"),
                           ("dave", "roster")}),
    ({"service": "sis", "consumer": "dave"}, {("dave", "roster"), ("dave", "sis")}),
    ({"consumer": "erin"}, {("erin", "sis"), ("erin", "global")}),
    ({"consumer": "gina"}, {("gina", "consumer:gina")}),  # not counted under another's
    ({"consumer": "hank"}, {("hank", "group:teachers")}),
    ({"service": "sis", "consumer": "gina"}, set()),  # hers is attached to her
    ({"route": "courses"}, set()),  # no limit attached there
])
async def test_a_rule_scope_selects_quotas(make_service: Callable[..., AlertService],
                                           scope: dict[str, str],
                                           expected: set[tuple[str, str]]) -> None:
    service = make_service(scope=scope)
    findings = await service.checks.run(service.rules["quotas"], NOON)
    assert {(f.subject["consumer"], _attached(f.subject["quota"]))
            for f in findings} == expected


def _attached(label: str) -> str:
    """Where a quota's label says it is attached: ``roster``, ``sis``, ``global``, or
    ``consumer:NAME`` / ``group:NAME``."""
    place = label.split(" at ")[-1]
    return place if place.startswith(("consumer:", "group:")) else place.split(":")[-1]


async def test_no_quotas_no_findings(make_service: Callable[..., AlertService]) -> None:
    service = make_service()
    service.checks.sources = AlertSources()
    assert await service.checks.run(service.rules["quotas"], NOON) == []
    assert await service.evaluate_once() == []


def test_quota_is_a_plain_value() -> None:
    quota = Quota("route:r", "1d", DAY, 10, 1, {"route": "r"})
    assert quota.label == "1d at route:r" and quota.excluding == ()


@pytest.mark.parametrize(("rule", "words"), [
    ({"windw": "1d"}, "Extra inputs"),
    ({"scope": {"routes": "x"}}, "Extra inputs"),
    ({"scope": {"upstream": "x"}}, "scopes by route, service or consumer"),
    ({"scope": {"budget": "b"}}, "scopes by route, service or consumer"),
    ({"horizon": 0}, "horizon of at least 1m"),
    ({"horizon": "soon"}, "horizon"),
    ({"horizon": "200d"}, "horizon"),
    ({"used_ratio": 1.5}, "used_ratio"),
])
def test_bad_quota_rules_fail_at_load(rule: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        AlertsConfig.model_validate({"rules": [{"name": "q", "kind": "quota-forecast",
                                                **rule}]})


DOC_EXAMPLE = """\
plugins:
  - name: rate-limit          # every consumer: 10,000 requests a day, across routes
    config: {by: consumer, limits: [{window: 1m, limit: 300}, {window: 1d, limit: 10000}]}
observe:
  alerts:
    webhooks:
      - {name: ops, url: "https://alerts.example.edu/campusgate"}
    rules:
      - name: quotas-running-out
        kind: quota-forecast
        horizon: 6h            # warn when a quota runs out within 6 hours at this pace
        used_ratio: 0.9        # or when 90% of it is used
        for: 5m
        webhooks: [ops]
      - name: roster-partner-quota
        kind: quota-forecast
        scope: {route: roster, consumer: district-app}
        horizon: 1d
"""


def test_the_doc_example_loads() -> None:
    config = load_config_text(DOC_EXAMPLE, "docs/observability.md")
    rules = config.observe.alerts.rules
    assert [(r.kind, r.horizon) for r in rules] == [("quota-forecast", 6 * HOUR),
                                                   ("quota-forecast", DAY)]
    assert [q.label for q in rate_limit_quotas(config)] == ["1d at global"]

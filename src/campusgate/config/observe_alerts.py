"""Alert rules and where they are sent (``observe.alerts``; docs/observability.md,
"Trends and alerts").

A rule watches one kind of trend (:mod:`campusgate.observe.trends`) over the routes,
services or upstreams its scope selects, fires when its condition has held for
``for`` and resolves when it has been clear for ``resolve_after``; each change is a
row of ``alert_events`` and a notification to the rule's webhooks.  Bad settings
(an unknown webhook, a threshold out of range, a scope a kind cannot use) fail at
load with the rule's name.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from campusgate.config.common import DURATION_TEXT, Name, Seconds, StrictModel
from campusgate.config.observe_sinks import ClientTls, https_for_tls

__all__ = ["KINDS", "AlertRule", "AlertScope", "AlertsConfig", "Webhook"]

Kind = Literal["latency-regression", "error-rate", "budget-forecast", "quota-forecast",
               "target-ejections"]
KINDS: tuple[Kind, ...] = ("latency-regression", "error-rate", "budget-forecast",
                           "quota-forecast", "target-ejections")



#: ``"15m"``/``"7d"`` or seconds (0 allowed: ``for: 0`` fires at once).
Span = Annotated[float, DURATION_TEXT, Field(ge=0, le=90 * 86400)]
#: Like :data:`Span`, but more than 0.
Window = Annotated[float, DURATION_TEXT, Field(ge=60, le=86400)]


class Webhook(StrictModel):
    """An HTTP endpoint notified of alerts: a JSON document POSTed (``json``), or
    ``{"text", "blocks"}`` for Slack incoming webhooks and compatibles (``slack``).
    The URL and headers often hold a token: they are never logged."""

    name: Name
    url: str
    format: Literal["json", "slack"] = "json"
    headers: dict[str, str] = Field(default_factory=dict)
    #: Seconds for one attempt.
    timeout: Seconds = 10.0
    #: Further attempts after a connection error, a 5xx or a 429.
    retries: int = Field(default=3, ge=0, le=10)
    #: The first wait between attempts, doubled each time (with jitter).
    retry_backoff: Seconds = 1.0
    #: A private CA or a client certificate for an ``https://`` receiver (as the sinks').
    tls: ClientTls | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _tls_needs_https(self) -> Webhook:
        https_for_tls(self.tls, self.url)
        return self


class AlertScope(StrictModel):
    """Which subjects a rule watches (every one given must match; none: all).
    ``route``/``service``/``upstream`` select roll-ups (there ``upstream`` is the
    target that answered, ``host:port``, or the AI provider); for ``target-ejections``
    ``upstream`` is an upstream's name; ``budget``, ``consumer`` and ``model`` select
    AI budgets.  For ``quota-forecast``, ``route`` selects the rate limits attached at
    that route, ``service`` those attached at that service or its routes, and
    ``consumer`` one consumer."""

    route: str | None = None
    service: str | None = None
    upstream: str | None = None
    budget: str | None = None
    consumer: str | None = None
    model: str | None = None


class AlertRule(StrictModel):
    name: Name
    kind: Kind
    scope: AlertScope = Field(default_factory=AlertScope)
    #: ``latency-regression``/``error-rate``: per ``route`` or per ``upstream``.
    per: Literal["route", "upstream"] = "route"
    severity: Literal["info", "warning", "critical"] = "warning"
    #: Names of ``observe.alerts.webhooks`` to notify (none: history only).
    webhooks: list[str] = Field(default_factory=list)
    #: The condition must hold this long before the rule fires, and be clear this
    #: long before it resolves (hysteresis: no flapping on a single evaluation).
    for_: Span = Field(default=120.0, alias="for")
    resolve_after: Span = 300.0
    # ---- latency-regression and error-rate
    #: The recent window compared against the baseline.
    window: Window = 900.0
    #: Baseline: the same time of day on each of the previous ``baseline_days``; with
    #: fewer than ``min_baseline_days`` of them holding ``min_requests``, the previous
    #: ``baseline_hours`` hours instead.
    baseline_days: int = Field(default=7, ge=1, le=60)
    min_baseline_days: int = Field(default=2, ge=1, le=60)
    baseline_hours: int = Field(default=6, ge=1, le=48)
    #: The window (and each baseline window) needs this many requests to count.
    min_requests: int = Field(default=50, ge=1)
    #: Which latency is compared: the whole request's or the upstream's.
    latency: Literal["total", "upstream"] = "total"
    #: Quantile compared (0.5, 0.9, 0.95 or 0.99).
    quantile: float = 0.95
    #: Regression: the quantile above ``factor`` x baseline and above ``floor_ms``.
    factor: float = Field(default=2.0, gt=1.0, le=100.0)
    floor_ms: float = Field(default=50.0, ge=0)
    #: Error rate: above baseline + ``delta`` and above ``min_rate`` (0..1).
    delta: float = Field(default=0.05, gt=0, le=1)
    min_rate: float = Field(default=0.02, ge=0, le=1)
    # ---- budget-forecast and quota-forecast
    #: Warn when the budget (or rate-limit quota) runs out within this long at the
    #: current pace, before its period ends; or when ``used_ratio`` of it is used.
    horizon: Span = 86400.0
    used_ratio: float = Field(default=0.9, gt=0, le=1)
    # ---- target-ejections
    #: A target ejected (passively or by active checks) more than ``max_ejections``
    #: times within ``ejection_window``.
    ejection_window: Window = 900.0
    max_ejections: int = Field(default=3, ge=0, le=100_000)

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _coherent(self) -> AlertRule:
        scope = self.scope
        if self.quantile not in (0.5, 0.9, 0.95, 0.99):
            raise ValueError(f"rule {self.name!r}: quantile is one of 0.5, 0.9, 0.95, 0.99")
        if self.latency == "upstream" and self.quantile == 0.9:
            raise ValueError(f"rule {self.name!r}: upstream latency has p50, p95 and p99")
        if self.kind in ("latency-regression", "error-rate"):
            if scope.budget or scope.consumer or scope.model:
                raise ValueError(f"rule {self.name!r}: {self.kind} scopes by route, service "
                                 "or upstream, not budget, consumer or model")
            if self.min_baseline_days > self.baseline_days:
                raise ValueError(f"rule {self.name!r}: min_baseline_days is more than "
                                 "baseline_days")
        elif self.kind == "budget-forecast":
            if scope.route or scope.service or scope.upstream:
                raise ValueError(f"rule {self.name!r}: budget-forecast scopes by budget, "
                                 "consumer or model")
        elif self.kind == "quota-forecast":
            if scope.upstream or scope.budget or scope.model:
                raise ValueError(f"rule {self.name!r}: quota-forecast scopes by route, "
                                 "service or consumer")
            if self.horizon < 60:
                raise ValueError(f"rule {self.name!r}: quota-forecast needs a horizon of "
                                 "at least 1m")
        elif scope.route or scope.service or scope.budget or scope.consumer or scope.model:
            raise ValueError(f"rule {self.name!r}: target-ejections scopes by upstream only")
        return self


class AlertsConfig(StrictModel):
    enabled: bool = True
    #: Seconds between two evaluations of the rules.
    interval: Annotated[float, DURATION_TEXT, Field(gt=0, le=86400)] = 60.0
    webhooks: list[Webhook] = Field(default_factory=list)
    rules: list[AlertRule] = Field(default_factory=list)
    #: ``alert_events`` rows older than this are deleted.
    history: Span = 90 * 86400.0

    @model_validator(mode="after")
    def _known_names(self) -> AlertsConfig:
        for what, names in (("webhook", [w.name for w in self.webhooks]),
                            ("rule", [r.name for r in self.rules])):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{what} name(s) used twice: {', '.join(twice)}")
        known = {w.name for w in self.webhooks}
        for rule in self.rules:
            unknown = [n for n in rule.webhooks if n not in known]
            if unknown:
                raise ValueError(f"rule {rule.name!r}: unknown webhook(s) "
                                 f"{', '.join(unknown)}; declare them in observe.alerts.webhooks")
        return self

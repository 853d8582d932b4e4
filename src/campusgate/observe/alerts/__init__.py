"""Alert rules over the trends (docs/observability.md, "Trends and alerts").

::

    service = AlertService(config.observe.alerts, config.storage, AlertSources(
        balancers=lambda: snapshot.balancers, budgets=lambda: ai_budgets,
        state=lambda: state_backend, quotas=lambda: rate_limit_quotas(entities)),
        holder=worker_id)
    service.start()          # evaluates every interval on the worker holding the lease
    ...
    await service.close()

:mod:`.checks` reads roll-ups, budget counters and ejections into findings
(:mod:`campusgate.observe.trends` judges them; :mod:`.quotas` forecasts rate-limit
quotas from the roll-ups), :mod:`.tracker` turns findings into
firing/resolved transitions with hysteresis, :mod:`.history` keeps them in
``alert_events``, :mod:`.webhooks` sends them.
"""

from campusgate.observe.alerts.checks import AlertSources, Checks
from campusgate.observe.alerts.history import AlertHistory
from campusgate.observe.alerts.quotas import Quota, rate_limit_quotas
from campusgate.observe.alerts.service import AlertService, default_rules
from campusgate.observe.alerts.tracker import RuleTracker, Transition
from campusgate.observe.alerts.webhooks import Notifier, json_payload, slack_payload

__all__ = ["AlertHistory", "AlertService", "AlertSources", "Checks", "Notifier", "Quota",
           "RuleTracker", "Transition", "default_rules", "json_payload", "rate_limit_quotas",
           "slack_payload"]

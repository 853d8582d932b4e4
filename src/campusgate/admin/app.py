"""The admin API application factory."""

from __future__ import annotations

from fastapi import FastAPI

import campusgate
from campusgate.admin.context import AdminContext
from campusgate.admin.endpoints import (
    config,
    consumer_groups,
    consumers,
    identity_clients,
    identity_keys,
    identity_roster,
    identity_settings,
    identity_users,
    metrics,
    observe_alerts,
    observe_analytics,
    observe_logs,
    plugins,
    routes,
    services,
    status,
    upstreams,
)
from campusgate.admin.errors import install_error_handlers
from campusgate.admin.runtime import RuntimeInfo
from campusgate.store import ConfigStore

__all__ = ["create_admin_app"]

_DESCRIPTION = """\
Manage a campusgate gateway: upstreams, services, routes and global plugins,
consumers with their credentials and groups, the whole configuration with its
revisions, and the runtime status.

Every endpoint except `/healthz` and `/metrics` (unless
`observe.metrics.require_token`) needs an admin token, as `Authorization: Bearer
<token>` or `Campusgate-Admin-Token: <token>`. Each write creates a new configuration
revision (header `X-Campusgate-Revision`) and is applied at once. Errors are
`{"error": {"code", "message", "details"?}}`.

Credential secrets are sealed before they are stored and never shown again: a secret
the gateway generates is returned once, when the credential is created.
"""

_TAGS = [
    {"name": "status", "description": "Liveness and runtime status."},
    {"name": "metrics", "description": "Prometheus metrics of the node (no token by "
     "default)."},
    {"name": "config", "description": "The whole configuration, revisions and diffs."},
    {"name": "upstreams", "description": "Named sets of targets with load balancing."},
    {"name": "services", "description": "Upstream APIs and the routes leading to them."},
    {"name": "routes", "description": "Request matching rules, by name across services."},
    {"name": "plugins", "description": "Plugins enabled globally."},
    {"name": "consumers", "description": "Who calls the APIs, and their credentials "
     "(secrets redacted)."},
    {"name": "consumer-groups", "description": "Groups of consumers, with plugins that "
     "apply to every member."},
    {"name": "identity", "description": "The built-in OAuth 2.0 / OpenID Connect provider: "
     "settings, clients (secrets shown once), users, consents, signing keys."},
    {"name": "observe", "description": "Analytics from the roll-ups: series, top-N, "
     "percentiles, errors."},
    {"name": "observe-alerts", "description": "Alert rules, their state and history; "
     "trends: regressions, budget forecasts, ejected targets."},
    {"name": "observe-logs", "description": "Access records: search, one request's "
     "records, CSV export."},
]


def create_admin_app(store: ConfigStore, runtime: RuntimeInfo) -> FastAPI:
    """The admin API over ``store``; ``runtime`` reports status and applies writes."""
    app = FastAPI(
        title="campusgate admin API",
        version=campusgate.__version__,
        description=_DESCRIPTION,
        openapi_tags=_TAGS,
    )
    app.state.admin = AdminContext(store=store, runtime=runtime)
    install_error_handlers(app)
    for module in (status, metrics, config, upstreams, services, routes, plugins, consumers,
                   consumer_groups, identity_settings, identity_clients, identity_users,
                   identity_keys, identity_roster, observe_analytics, observe_logs,
                   observe_alerts):
        app.include_router(module.build_router())
    return app

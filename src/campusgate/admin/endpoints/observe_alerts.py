"""``/observe/alerts`` and ``/observe/trends``: alert rules with their state and
history, test notifications, and the trends found now (docs/observability.md,
"Trends and alerts").

Any worker answers: what is firing comes from the ``alert_events`` history in the
shared store; what is pending is known only to the evaluating worker.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from fastapi import APIRouter, Depends, Query

from campusgate.admin.auth import require_admin
from campusgate.admin.context import AdminContext, admin_context
from campusgate.admin.errors import NotFound
from campusgate.admin.schemas import error_responses
from campusgate.observe.alerts import AlertService

__all__ = ["ServesAlerts", "build_router"]


@runtime_checkable
class ServesAlerts(Protocol):
    """A runtime with an alert evaluator (the worker; None when alerts are off)."""

    @property
    def alerts(self) -> AlertService | None: ...


def _service(context: Annotated[AdminContext, Depends(admin_context)]) -> AlertService:
    runtime = context.runtime
    service = runtime.alerts if isinstance(runtime, ServesAlerts) else None
    if service is None:
        raise NotFound("alerts are off on this gateway (observe.alerts.enabled: false)")
    return service


Service = Annotated[AlertService, Depends(_service)]


def build_router() -> APIRouter:
    router = APIRouter(prefix="/observe", tags=["observe-alerts"],
                       dependencies=[Depends(require_admin)])

    @router.get("/alerts", summary="Alert rules with what each has firing now",
                responses=error_responses(401, 404))
    async def rules(service: Service) -> dict[str, Any]:
        return {"interval": service.config.interval,
                "evaluating_here": service.leader, "last_round": service.last_round,
                "rules": await service.rules_state()}

    @router.get("/alerts/history", summary="Alert events, newest first",
                responses=error_responses(400, 401, 404))
    async def history(
        service: Service,
        rule: str | None = None,
        state: Annotated[Literal["firing", "resolved", "test"] | None, Query()] = None,
        since: Annotated[float | None, Query(description="Epoch seconds.")] = None,
        before_id: Annotated[int | None, Query(description="Page: events older than "
                                               "this id.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        events = await service.history.events(rule=rule, state=state, since=since,
                                              before_id=before_id, limit=limit)
        return {"items": events,
                "next_before_id": events[-1]["id"] if len(events) == limit else None}

    @router.get("/trends", summary="Regressions, budget forecasts and ejected targets now",
                responses=error_responses(401, 404))
    async def trends(
        service: Service,
        all: Annotated[bool, Query(description="Also what is fine, not only what is "
                                   "flagged.")] = False,
    ) -> dict[str, Any]:
        findings = await service.trends()
        return {"items": [f.as_dict() for f in findings if all or f.breached]}

    @router.post("/alerts/{rule}/test", summary="Send a test notification of a rule",
                 responses=error_responses(401, 404))
    async def test(service: Service, rule: str) -> dict[str, Any]:
        if rule not in service.rules:
            raise NotFound(f"no alert rule named {rule!r}")
        delivered = await service.test(rule)
        return {"rule": rule, "webhooks": [{"name": name, "delivered": ok}
                                           for name, ok in delivered.items()]}

    return router

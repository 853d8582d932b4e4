"""``/metrics``: the node's Prometheus metrics (text format, or OpenMetrics when the
scraper asks for it).  No admin token unless ``observe.metrics.require_token``."""

from __future__ import annotations

from typing import Annotated, Protocol, runtime_checkable

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPBearer

from campusgate.admin.auth import TOKEN_HEADER, require_admin
from campusgate.admin.context import AdminContext, admin_context
from campusgate.admin.errors import NotFound
from campusgate.admin.schemas import error_responses
from campusgate.observe.metrics import NodeMetrics

__all__ = ["ServesMetrics", "build_router"]

_bearer = HTTPBearer(auto_error=False)


@runtime_checkable
class ServesMetrics(Protocol):
    """A runtime with metrics (the worker: None when ``observe.metrics.enabled`` is
    false)."""

    @property
    def metrics(self) -> NodeMetrics | None: ...


def _node(context: AdminContext) -> NodeMetrics:
    runtime = context.runtime
    node = runtime.metrics if isinstance(runtime, ServesMetrics) else None
    if node is None:
        raise NotFound("metrics are off on this gateway (observe.metrics.enabled: false)")
    return node


def build_router() -> APIRouter:
    router = APIRouter(tags=["metrics"])

    @router.get(
        "/metrics",
        summary="Prometheus metrics of this node (no authentication by default)",
        description="Requests, latencies, bytes, errors, rate-limit rejections, AI tokens "
        "and cost, upstream health and pools, the access-log queue and sinks, process "
        "stats: every worker of the node, merged.  Prometheus text format, or "
        "OpenMetrics when `Accept` asks for `application/openmetrics-text`.  An admin "
        "token is needed only with `observe.metrics.require_token: true`.",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}, **error_responses(401, 404)},
    )
    async def metrics(
        request: Request,
        context: Annotated[AdminContext, Depends(admin_context)],
    ) -> Response:
        node = _node(context)
        if node.settings.require_token:
            await require_admin(request, context, await _bearer(request),
                                request.headers.get(TOKEN_HEADER))
        body, content_type = await node.render(request.headers.get("accept"))
        return Response(body, headers={"content-type": content_type})

    return router

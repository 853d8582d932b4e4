"""``/healthz`` (no auth) and ``/status``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from campusgate.admin.auth import require_admin
from campusgate.admin.context import AdminContext, admin_context
from campusgate.admin.schemas import Health, error_responses

__all__ = ["build_router"]


def build_router() -> APIRouter:
    router = APIRouter(tags=["status"])

    @router.get("/healthz", summary="Liveness check (no authentication)")
    async def healthz() -> Health:
        return Health(status="ok")

    @router.get(
        "/status",
        summary="Runtime status of this gateway process",
        description="The applied revision, open connections, upstream health, uptime, "
        "pid and version, plus `store_revision`: the newest revision in the store.",
        dependencies=[Depends(require_admin)],
        responses=error_responses(401),
    )
    async def status(
        context: Annotated[AdminContext, Depends(admin_context)],
    ) -> dict[str, Any]:
        return {**context.runtime.status(), "store_revision": await context.store.latest_revision()}

    return router
